/**
 * `/a2a/{assistant_id}`: the Agent2Agent protocol (JSON-RPC 2.0, the v0.3
 * method names the official OpenAPI description lists) and each
 * assistant's agent card, as the official Agent Server defines them
 * (docs/mcp-a2a.md):
 *
 * - `message/send`: the message's text parts become `messages`, its data
 *   parts are merged into the input; a run on the thread `contextId` names
 *   (created when missing, a new one when absent), waited for; the answer
 *   is the Task (`id` = run id, `contextId` = thread id) with the graph's
 *   last AI message as its artifact (`configuration.blocking: false`: the
 *   submitted Task at once);
 * - `message/stream`: the same run, as server-sent JSON-RPC responses: the
 *   submitted Task, a `working` status update, the AI's tokens as pieces
 *   of one artifact (`artifact-update`), and the final status update;
 * - `tasks/get`: the run as a Task; `tasks/cancel`: interrupts the run and
 *   answers the canceled Task;
 * - `GET /.well-known/agent-card.json?assistant_id=...` (and
 *   `/a2a/{assistant_id}/.well-known/agent-card.json`): the agent card.
 */
import { randomUUID } from "node:crypto";
import { Hono, type Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";
import { BatonError } from "../../core/errors.ts";
import type { RequestContext } from "../../core/context.ts";
import { isFinalRunStatus, type Assistant, type Run, type RunEvent, type StreamMode } from "../../core/types.ts";
import { agentRunInput, failureText, inputSchemaOrUnknown, protocolContext } from "../agent-runs.ts";
import { ctxOf, type BatonEnv } from "../context.ts";
import type { HttpDeps } from "../deps.ts";
import { zodMessage } from "../errors.ts";
import { accepts, readRpcMessage, rpcErrorBody, RpcCode, RpcError, rpcErrorOf, rpcErrorResponse, wholeRequestStatus, type RpcId } from "../json-rpc.ts";
import { jsonWhenReady, sseResponse } from "../sse.ts";

export const A2A_PROTOCOL_VERSION = "0.3.0";
/** The most history messages a task answer may ask for, as on the official server. */
export const MAX_HISTORY_LENGTH = 10;

/** A2A error codes (the protocol's own range). */
const A2aCode = { taskNotFound: -32001, taskNotCancelable: -32002, pushNotificationNotSupported: -32003, unsupportedOperation: -32004, contentTypeNotSupported: -32005 } as const;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const Part = z.looseObject({ kind: z.string() });
const Message = z.looseObject({
  role: z.enum(["user", "agent"]),
  parts: z.array(Part).min(1, "a message needs at least one part"),
  messageId: z.string(),
  contextId: z.string().regex(UUID, "must be the UUID of a context (thread) this server returned").optional(),
  taskId: z.string().optional(),
});
const SendConfiguration = z.looseObject({
  blocking: z.boolean().optional(),
  historyLength: z.number().int().min(0).max(MAX_HISTORY_LENGTH, `historyLength cannot exceed ${MAX_HISTORY_LENGTH}`).optional(),
  pushNotificationConfig: z.unknown().optional(),
  acceptedOutputModes: z.array(z.string()).optional(),
});
const MessageSendParams = z.looseObject({ message: Message, configuration: SendConfiguration.optional() });
const TaskQueryParams = z.looseObject({
  id: z.string(),
  contextId: z.string().optional(),
  historyLength: z.number().int().min(0).max(MAX_HISTORY_LENGTH, `historyLength cannot exceed ${MAX_HISTORY_LENGTH}`).optional(),
});
const TaskIdParams = z.looseObject({ id: z.string(), contextId: z.string().optional() });

type A2aMessage = z.infer<typeof Message>;
type Json = Record<string, unknown>;

/** Invalid params: the request's shape is wrong, answered 400 as the official description says. */
function params<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value ?? undefined);
  if (!result.success) throw new RpcError(RpcCode.invalidParams, `Invalid params: ${zodMessage(result.error).replace(/^body/, "params")}`, 400);
  return result.data;
}

export function a2aRoutes(deps: HttpDeps): Hono<BatonEnv> {
  const app = new Hono<BatonEnv>();
  app.post("/a2a/:assistant_id", (c) => handlePost(deps, c));
  for (const method of ["get", "delete"] as const) {
    app[method]("/a2a/:assistant_id", (c) => {
      c.header("Allow", "POST");
      return rpcErrorResponse(c, 405, RpcCode.invalidRequest, "Method not allowed: send A2A JSON-RPC requests with POST.");
    });
  }
  app.get("/.well-known/agent-card.json", (c) => agentCard(deps, c, c.req.query("assistant_id"), "/.well-known/agent-card.json"));
  app.get("/a2a/:assistant_id/.well-known/agent-card.json", (c) => agentCard(deps, c, c.req.param("assistant_id"), `/a2a/${c.req.param("assistant_id")}/.well-known/agent-card.json`));
  return app;
}

async function handlePost(deps: HttpDeps, c: Context<BatonEnv>): Promise<Response> {
  let message: Json;
  try {
    message = await readRpcMessage(c);
  } catch (error) {
    const answer = rpcErrorOf(error, deps.logger, "a2a");
    return rpcErrorResponse(c, wholeRequestStatus(answer), answer.code, answer.message);
  }
  const id = (message.id ?? null) as RpcId;
  const method = message.method as string | undefined;
  const streaming = method === "message/stream";
  const accept = c.req.header("accept");
  if (!accepts(accept, streaming ? "text/event-stream" : "application/json")) {
    return rpcErrorResponse(c, 400, RpcCode.invalidRequest, `Not acceptable: the Accept header must include ${streaming ? "text/event-stream for message/stream" : "application/json"}.`, id);
  }
  // A response or a notification: nothing to answer, as on the official server.
  if (method === undefined || id === null) {
    if (method === undefined && id === null) return rpcErrorResponse(c, 400, RpcCode.invalidRequest, "Invalid JSON-RPC message: neither a request, a response nor a notification.");
    return c.body(null, 202);
  }
  const ctx = protocolContext(ctxOf(c));
  let assistant: Assistant;
  try {
    assistant = await deps.assistantService.get(ctx, c.req.param("assistant_id") ?? "");
  } catch (error) {
    // The endpoint itself (the assistant in the path) is what is not found: 404, as the official description lists.
    const answer = error instanceof BatonError && error.code === "not_found" ? { code: RpcCode.invalidParams, message: error.message, status: 404 as ContentfulStatusCode } : rpcErrorOf(error, deps.logger, "a2a");
    return c.json(rpcErrorBody(id, answer), answer.status);
  }
  try {
    const kit: MethodKit = { deps, c, ctx, assistant, id };
    switch (method) {
      case "message/send":
        return await messageSend(kit, sendParams(message.params));
      case "message/stream":
        return await messageStream(kit, sendParams(message.params));
      case "tasks/get":
        return c.json({ jsonrpc: "2.0", id, result: await tasksGet(kit, params(TaskQueryParams, message.params)) });
      case "tasks/cancel":
        return c.json({ jsonrpc: "2.0", id, result: await tasksCancel(kit, params(TaskIdParams, message.params)) });
      case "tasks/resubscribe":
      case "tasks/pushNotificationConfig/set":
      case "tasks/pushNotificationConfig/get":
      case "tasks/pushNotificationConfig/list":
      case "tasks/pushNotificationConfig/delete":
        throw new RpcError(A2aCode.unsupportedOperation, `${method} is not supported by Baton's A2A endpoint.`);
      default:
        throw new RpcError(RpcCode.methodNotFound, `Method not found: ${method.slice(0, 100)}`);
    }
  } catch (error) {
    const answer = rpcErrorOf(error, deps.logger, "a2a");
    return c.json(rpcErrorBody(id, answer), answer.status);
  }
}

/** A message's params; push notifications (the one configuration Baton cannot honour) are refused. */
function sendParams(value: unknown): z.infer<typeof MessageSendParams> {
  const p = params(MessageSendParams, value);
  if (p.configuration?.pushNotificationConfig !== undefined && p.configuration.pushNotificationConfig !== null) {
    throw new RpcError(A2aCode.pushNotificationNotSupported, "Push notifications are not supported by Baton's A2A endpoint: leave out configuration.pushNotificationConfig (poll tasks/get, or use message/stream).");
  }
  return p;
}

interface MethodKit {
  deps: HttpDeps;
  c: Context<BatonEnv>;
  ctx: RequestContext;
  assistant: Assistant;
  id: RpcId;
}

/** A message's parts as the graph's input: text parts as `messages`, data parts merged in. */
async function inputOf(kit: MethodKit, message: A2aMessage): Promise<Json> {
  const messages: { role: string; content: string }[] = [];
  const data: Json = {};
  for (const [index, part] of message.parts.entries()) {
    if (part.kind === "text") {
      if (typeof part.text !== "string") throw new RpcError(RpcCode.invalidParams, `Invalid params: message.parts.${index}.text must be a string.`, 400);
      messages.push({ role: message.role === "user" ? "user" : "assistant", content: part.text });
    } else if (part.kind === "data") {
      const value = part.data;
      if (value === null || typeof value !== "object" || Array.isArray(value)) throw new RpcError(RpcCode.invalidParams, `Invalid params: message.parts.${index}.data must be a JSON object.`, 400);
      Object.assign(data, value);
    } else {
      throw new RpcError(A2aCode.contentTypeNotSupported, `Unsupported part kind '${part.kind.slice(0, 40)}': Baton's A2A endpoint takes text and data parts only.`);
    }
  }
  const schema = messages.length > 0 ? await inputSchemaOrUnknown(kit.deps, kit.assistant, "a2a") : undefined;
  // (a schema that cannot be had is not checked: the run will tell)
  if (schema !== undefined) {
    const properties = (schema.properties ?? {}) as Json;
    if (!("messages" in properties)) {
      throw new RpcError(
        RpcCode.invalidParams,
        `Assistant '${kit.assistant.assistant_id}' (graph '${kit.assistant.graph_id}') takes no 'messages' input, so it cannot take text parts; send a data part with its input fields (${Object.keys(properties).join(", ") || "none known"}).`,
      );
    }
  }
  return messages.length > 0 ? { ...data, messages } : data;
}

/**
 * Starts the run a message asks for, on its context (thread). A context
 * whose graph stopped at `interrupt()` (an input-required task) is resumed
 * with the message: a data part's `resume` value, else its text.
 */
async function startRun(kit: MethodKit, message: A2aMessage, streaming: boolean): Promise<Run> {
  const threadId = message.contextId?.toLowerCase() ?? randomUUID();
  const modes: StreamMode[] = streaming ? ["values", "messages-tuple"] : ["values"];
  if (message.contextId !== undefined && (await waitsForInput(kit, threadId))) {
    return kit.deps.runs.create(kit.ctx, agentRunInput(kit.assistant.assistant_id, null, threadId, modes, { resume: resumeValue(message) }));
  }
  const input = await inputOf(kit, message);
  return kit.deps.runs.create(kit.ctx, agentRunInput(kit.assistant.assistant_id, input, threadId, modes));
}

/** Whether the caller's thread is stopped at an interrupt (false when it does not exist yet). */
async function waitsForInput(kit: MethodKit, threadId: string): Promise<boolean> {
  try {
    return (await kit.deps.threadRecords.get(kit.ctx, threadId)).status === "interrupted";
  } catch (error) {
    if (error instanceof BatonError && error.code === "not_found") return false;
    throw error;
  }
}

/** What a message answers an interrupt with: a data part's `resume`, else its text parts joined. */
function resumeValue(message: A2aMessage): unknown {
  for (const part of message.parts) {
    const data = part.data as { resume?: unknown } | undefined;
    if (part.kind === "data" && data !== null && typeof data === "object" && "resume" in data) return data.resume;
  }
  const texts = message.parts.filter((part) => part.kind === "text" && typeof part.text === "string").map((part) => part.text as string);
  if (texts.length === 0) throw new RpcError(RpcCode.invalidParams, "The task waits for input: answer it with a text part, or a data part holding 'resume'.", 400);
  return texts.join("\n");
}

async function messageSend(kit: MethodKit, p: z.infer<typeof MessageSendParams>): Promise<Response> {
  const run = await startRun(kit, p.message, false);
  const { deps, c, id } = kit;
  const historyLength = p.configuration?.historyLength;
  // Not blocking: the task as it is now (submitted); the client polls tasks/get.
  if (p.configuration?.blocking === false) {
    const task = taskOf(run, run.status, undefined, undefined, { historyLength });
    const sent = { ...p.message, kind: "message", taskId: run.run_id, contextId: run.thread_id };
    return c.json({ jsonrpc: "2.0", id, result: { ...task, history: historyLength === 0 ? [] : [sent] } });
  }
  // Answered at once, written when the run ends (newlines keep the connection alive meanwhile).
  return jsonWhenReady(
    c.req.raw,
    async (signal) => {
      try {
        const { status, output } = await deps.runs.waitFinal(run, signal);
        return { jsonrpc: "2.0", id, result: taskOf(run, status, output, undefined, { artifacts: true, historyLength }) };
      } catch (error) {
        // The client is gone: nothing will read the answer.
        if (signal.aborted) return null;
        return rpcErrorBody(id, rpcErrorOf(error, deps.logger, "a2a"));
      }
    },
    { keepAliveMs: deps.options.keepAliveMs },
  );
}

async function messageStream(kit: MethodKit, p: z.infer<typeof MessageSendParams>): Promise<Response> {
  const run = await startRun(kit, p.message, true);
  const { deps, c, id } = kit;
  const contextId = run.thread_id;
  let sequence = 0;
  const envelope = (result: unknown): RunEvent => ({ id: String(++sequence), event: "message", data: { jsonrpc: "2.0", id, result } });
  const working = () => ({ kind: "status-update", taskId: run.run_id, contextId, status: { state: "working", timestamp: new Date().toISOString() }, final: false });
  // The answer, streamed as one artifact: each AI token appended to it.
  const artifactId = randomUUID();
  const artifactChunk = (text: string, append: boolean, lastChunk: boolean) => ({
    kind: "artifact-update",
    taskId: run.run_id,
    contextId,
    artifact: { artifactId, name: "Assistant Response", parts: [{ kind: "text", text }] },
    append,
    lastChunk,
  });
  return sseResponse(
    c.req.raw,
    async function* (signal) {
      const sent = { ...p.message, kind: "message", taskId: run.run_id, contextId };
      const submitted = { ...taskOf(run, "pending", undefined), history: p.configuration?.historyLength === 0 ? [] : [sent] };
      yield envelope(submitted);
      let started = false;
      let chunks = 0;
      try {
        for await (const event of deps.runs.events(run, undefined, signal)) {
          if (event.event === "__final__") {
            const { status, output } = event.data as { status: string; output: unknown };
            const task = taskOf(run, status, output);
            if (chunks > 0) yield envelope(artifactChunk("", true, true));
            // Nothing streamed (a graph without a chat model): the answer as one chunk.
            else if ((task.status as { state: string }).state === "completed") yield envelope(artifactChunk(answerText(output), false, true));
            yield envelope({ kind: "status-update", taskId: run.run_id, contextId, status: task.status, final: true });
            return;
          }
          if (!started && (event.event === "metadata" || event.event === "values" || event.event === "messages")) {
            started = true;
            yield envelope(working());
          }
          const token = event.event === "messages" ? aiTokenText(event.data) : undefined;
          if (token !== undefined && token !== "") {
            chunks += 1;
            yield envelope(artifactChunk(token, true, false));
          }
        }
      } catch (error) {
        if (signal.aborted) return;
        yield { id: String(++sequence), event: "message", data: rpcErrorBody(id, rpcErrorOf(error, deps.logger, "a2a")) };
      }
    },
    { keepAliveMs: deps.options.keepAliveMs },
  );
}

/** The run a task id names, if it is one of this assistant's runs the caller may see. */
async function taskRun(kit: MethodKit, p: { id: string; contextId?: string | undefined }): Promise<Run> {
  const notFound = () => new RpcError(A2aCode.taskNotFound, `Task '${p.id.slice(0, 80)}' not found.`);
  if (!UUID.test(p.id) || (p.contextId !== undefined && !UUID.test(p.contextId))) throw notFound();
  try {
    const run = await kit.deps.runs.get(kit.ctx, p.id.toLowerCase(), p.contextId?.toLowerCase());
    if (run.assistant_id !== kit.assistant.assistant_id) throw notFound();
    return run;
  } catch (error) {
    if (error instanceof BatonError && error.code === "not_found") throw notFound();
    throw error;
  }
}

async function tasksGet(kit: MethodKit, p: z.infer<typeof TaskQueryParams>): Promise<Json> {
  const run = await taskRun(kit, p);
  const values = await kit.deps.threadService.state(kit.ctx, run.thread_id, {}).then(
    (state) => (state as { values?: unknown }).values,
    // A thread deleted since (its runs with it, but a read may cross the delete): no history.
    (error: unknown) => {
      if (error instanceof BatonError && error.code === "not_found") return undefined;
      throw error;
    },
  );
  // A final run's record holds its answer (C4): no need to wait for anything.
  return taskOf(run, run.status, isFinalRunStatus(run.status) ? run.output : undefined, values, { artifacts: true, historyLength: p.historyLength });
}

async function tasksCancel(kit: MethodKit, p: z.infer<typeof TaskIdParams>): Promise<Json> {
  const run = await taskRun(kit, p);
  if (isFinalRunStatus(run.status)) throw new RpcError(A2aCode.taskNotCancelable, `Task '${run.run_id}' has ended (${run.status}); it cannot be canceled.`);
  try {
    await kit.deps.runs.cancelOne(kit.ctx, run.thread_id, run.run_id, "interrupt", kit.c.req.raw.signal);
  } catch (error) {
    // The run ended between the read above and the cancel.
    if (error instanceof BatonError && error.code === "conflict") throw new RpcError(A2aCode.taskNotCancelable, `Task '${run.run_id}' has ended; it cannot be canceled.`);
    throw error;
  }
  const final = await kit.deps.runs.waitFinal(run, kit.c.req.raw.signal);
  return taskOf(run, final.status, final.output);
}

/** A2A's task state for a run's status (and output: a graph stopped at interrupt() waits for input). */
function taskState(status: string, output: unknown): string {
  switch (status) {
    case "pending":
      return "submitted";
    case "running":
      return "working";
    case "success":
      return (output as { __interrupt__?: unknown } | null)?.__interrupt__ !== undefined ? "input-required" : "completed";
    case "interrupted":
      return "canceled";
    default:
      return "failed";
  }
}

/** The Task a run is: its state, the thread's messages as history, and (when completed) the answer as an artifact. */
function taskOf(run: Run, status: string, output: unknown, values?: unknown, options: { artifacts?: boolean; historyLength?: number | undefined } = {}): Json {
  const state = taskState(status, output);
  const statusText = statusTextOf(state, output);
  const messages = messagesOf(values ?? output);
  const history = messages.map((m) => ({ ...toA2aMessage(m), taskId: run.run_id, contextId: run.thread_id }));
  const task: Json = {
    kind: "task",
    id: run.run_id,
    contextId: run.thread_id,
    status: { state, timestamp: new Date().toISOString(), ...(statusText === undefined ? {} : { message: agentMessage(run, statusText) }) },
    history: options.historyLength === undefined ? history : options.historyLength === 0 ? [] : history.slice(-options.historyLength),
  };
  if (options.artifacts === true && state === "completed") {
    task.artifacts = [{ artifactId: randomUUID(), name: "Assistant Response", description: `Response from assistant ${run.assistant_id}`, parts: [{ kind: "text", text: answerText(output) }] }];
  }
  return task;
}

/** What the agent says with a task's status: its failure, what it asks at an interrupt, or its answer. */
function statusTextOf(state: string, output: unknown): string | undefined {
  switch (state) {
    case "failed":
      return failureText(output);
    case "input-required":
      return questionText((output as { __interrupt__?: unknown }).__interrupt__);
    case "completed":
      return answerText(output);
    default:
      return undefined;
  }
}

/** The question of a graph stopped at interrupt(): the interrupts' values, a string as is, anything else as JSON. */
function questionText(interrupts: unknown): string {
  const values = Array.isArray(interrupts) ? interrupts.map((i) => (i !== null && typeof i === "object" && "value" in i ? (i as { value: unknown }).value : i)) : [interrupts];
  return values.map((value) => (typeof value === "string" ? value : JSON.stringify(value ?? null))).join("\n");
}

const agentMessage = (run: Run, text: string) => ({ kind: "message", role: "agent", messageId: randomUUID(), taskId: run.run_id, contextId: run.thread_id, parts: [{ kind: "text", text }] });

type WireMessage = { type?: unknown; role?: unknown; content?: unknown };

function messagesOf(values: unknown): WireMessage[] {
  const messages = (values as { messages?: unknown } | null | undefined)?.messages;
  return Array.isArray(messages) ? (messages.filter((m) => m !== null && typeof m === "object") as WireMessage[]) : [];
}

/** A message's content as text: a string as is, text blocks joined, anything else as JSON. */
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((block) => (typeof block === "string" ? block : typeof (block as { text?: unknown })?.text === "string" ? (block as { text: string }).text : "")).join("");
  }
  return JSON.stringify(content ?? "");
}

const isAi = (m: WireMessage) => m.type === "ai" || m.type === "AIMessageChunk" || m.role === "assistant" || m.role === "ai";

function toA2aMessage(m: WireMessage): Json {
  const user = m.type === "human" || m.role === "user" || m.role === "human";
  return { kind: "message", role: user ? "user" : "agent", messageId: randomUUID(), parts: [{ kind: "text", text: contentText(m.content) }] };
}

/** The answer of a run: its last AI message, else its last message, else its output as JSON. */
function answerText(output: unknown): string {
  const messages = messagesOf(output);
  const answer = [...messages].reverse().find(isAi) ?? messages.at(-1);
  return answer !== undefined ? contentText(answer.content) : JSON.stringify(output ?? null);
}

/** The text of a `messages` (messages-tuple) event, [chunk, metadata], when the chunk is the AI's (not a tool's result, nor input). */
function aiTokenText(data: unknown): string | undefined {
  const chunk = Array.isArray(data) ? (data[0] as WireMessage | undefined) : undefined;
  return chunk === undefined || chunk === null || typeof chunk !== "object" || !isAi(chunk) ? undefined : contentText(chunk.content);
}

/** The agent card of an assistant the caller may see. */
async function agentCard(deps: HttpDeps, c: Context<BatonEnv>, assistantId: string | undefined, cardPath: string): Promise<Response> {
  if (assistantId === undefined || assistantId === "") {
    return c.json({ detail: "Missing required query parameter: assistant_id (the assistant whose agent card to answer)." }, 400);
  }
  const assistant = await deps.assistantService.get(ctxOf(c), assistantId);
  const schema = await inputSchemaOrUnknown(deps, assistant, "a2a");
  const properties = (schema?.properties ?? {}) as Json;
  const required = (schema?.required ?? []) as unknown;
  const url = new URL(c.req.url);
  const prefix = c.req.path.endsWith(cardPath) ? c.req.path.slice(0, c.req.path.length - cardPath.length) : "";
  const description = assistant.description ?? `${assistant.name} assistant`;
  const modes = ["application/json", "text/plain"];
  return c.json({
    protocolVersion: A2A_PROTOCOL_VERSION,
    name: assistant.name,
    description,
    url: `${url.origin}${prefix}/a2a/${assistant.assistant_id}`,
    preferredTransport: "JSONRPC",
    capabilities: { streaming: true, pushNotifications: false, stateTransitionHistory: false },
    defaultInputModes: modes,
    defaultOutputModes: modes,
    skills: [
      {
        id: `${assistant.assistant_id}-main`,
        name: `${assistant.name} Capabilities`,
        description,
        tags: ["assistant", "langgraph"],
        examples: [],
        inputModes: modes,
        outputModes: modes,
        metadata: { inputSchema: { required: Array.isArray(required) ? required : [], properties: Object.keys(properties).sort(), supportsA2A: "messages" in properties } },
      },
    ],
    version: deps.options.version,
  });
}
