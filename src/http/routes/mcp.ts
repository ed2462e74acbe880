/**
 * `/mcp`: the Model Context Protocol over streamable HTTP, served by the
 * official MCP TypeScript SDK (its web-standard transport), exposing the
 * assistants the caller may see as tools, as the official Agent Server does
 * (docs/mcp-a2a.md):
 *
 * - a tool per assistant: its name, its description, its graph's input
 *   schema; listed 100 a page (`cursor` is the offset);
 * - calling a tool runs the assistant statelessly with the arguments as
 *   input and waits for the run: its output as JSON text, or its failure
 *   with `isError`; answered as an event stream (keep-alive, progress) to
 *   clients that take one, and interrupted when its client goes away;
 * - stateless: no session id, a server and transport per request; `GET`
 *   (a server-to-client stream) answers 405 and `DELETE` (end a session)
 *   404, as there.
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { CallToolRequestSchema, ListToolsRequestSchema, McpError, type CallToolResult, type Tool } from "@modelcontextprotocol/sdk/types.js";
import { Hono, type Context } from "hono";
import type { RequestContext } from "../../core/context.ts";
import { agentRunInput, failureText, inputSchemaOrUnknown, protocolContext, type SchemaCache } from "../agent-runs.ts";
import { ctxOf, type BatonEnv } from "../context.ts";
import type { HttpDeps } from "../deps.ts";
import { accepts, readRpcMessage, rpcErrorBody, RpcCode, RpcError, rpcErrorOf, rpcErrorResponse, wholeRequestStatus, type RpcId } from "../json-rpc.ts";

/** Tools per `tools/list` page, as on the official server. */
export const TOOLS_PAGE_SIZE = 100;
/** Assistants looked at to find a tool by name. */
const MAX_NAMED = 1000;

export function mcpRoutes(deps: HttpDeps): Hono<BatonEnv> {
  const app = new Hono<BatonEnv>();
  for (const path of ["/mcp", "/mcp/"]) {
    app.post(path, (c) => handlePost(deps, c));
    // Stateless: there is no session whose messages a GET stream could carry.
    app.get(path, (c) => {
      c.header("Allow", "POST, DELETE");
      return rpcErrorResponse(c, 405, RpcCode.serverError, "Method not allowed: this MCP endpoint is stateless and offers no server-to-client stream; send requests with POST.");
    });
    // Nor a session to end.
    app.delete(path, (c) => rpcErrorResponse(c, 404, RpcCode.invalidRequest, "Session not found: this MCP endpoint is stateless and keeps no sessions."));
  }
  return app;
}

async function handlePost(deps: HttpDeps, c: Context<BatonEnv>): Promise<Response> {
  const accept = c.req.header("accept");
  // As the official server: either type will do (the answer is JSON); the SDK's transport wants both.
  if (!accepts(accept, "application/json") && !accepts(accept, "text/event-stream")) {
    return rpcErrorResponse(c, 400, RpcCode.invalidRequest, "Not acceptable: the Accept header must include application/json or text/event-stream (MCP clients send both).");
  }
  let message: Record<string, unknown>;
  try {
    message = await readRpcMessage(c);
  } catch (error) {
    const answer = rpcErrorOf(error, deps.logger, "mcp");
    return rpcErrorResponse(c, wholeRequestStatus(answer), answer.code, answer.message);
  }
  const refused = refuseToolCall(message);
  if (refused !== undefined) {
    // A notification gets no answer, not even an error (JSON-RPC 2.0).
    if (message.id === undefined || message.id === null) return c.body(null, 202);
    return c.json(rpcErrorBody(message.id as RpcId, { code: RpcCode.invalidParams, message: refused }));
  }
  // A tool call may outlast a client's request timeout: answered as an event stream (keep-alive, progress) when the client takes one.
  const streaming = message.method === "tools/call" && message.id !== undefined && message.id !== null && (accept ?? "").toLowerCase().includes("text/event-stream");
  const server = toolServer(deps, protocolContext(ctxOf(c)), c.req.raw.signal, streaming);
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: !streaming, keepAliveMs: deps.options.keepAliveMs });
  let response: Response;
  try {
    await server.connect(transport);
    response = await transport.handleRequest(sdkRequest(c.req.raw), { parsedBody: message });
  } catch (error) {
    await server.close();
    throw error;
  }
  if (response.body === null || !(response.headers.get("content-type") ?? "").includes("text/event-stream")) {
    // JSON answers are complete here; nothing of this request outlives it.
    await server.close();
    return response;
  }
  return closingWithBody(response, server, c.req.raw.signal);
}

/**
 * The SDK's event-stream answer, closing the request's server once the
 * stream has ended (the answer sent) or the client went away (which aborts
 * the call, and so interrupts its run).
 */
function closingWithBody(response: Response, server: Server, signal: AbortSignal): Response {
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    signal.removeEventListener("abort", close);
    void server.close().catch(() => undefined);
  };
  signal.addEventListener("abort", close, { once: true });
  const reader = response.body!.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) {
        controller.close();
        close();
      } else {
        controller.enqueue(value);
      }
    },
    cancel(reason) {
      close();
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: response.status, headers: response.headers });
}

/**
 * Why a `tools/call` request's params are not what the method takes (the
 * SDK would answer them as an internal error), or undefined.
 */
function refuseToolCall(message: Record<string, unknown>): string | undefined {
  if (message.method !== "tools/call") return undefined;
  const params = message.params as { name?: unknown; arguments?: unknown } | null | undefined;
  if (params === null || typeof params !== "object" || Array.isArray(params)) return "Invalid params: tools/call takes an object with the tool's name and its arguments.";
  if (typeof params.name !== "string") return "Invalid params: 'name' must be the name of a tool (a string).";
  const args = params.arguments;
  if (args !== undefined && (args === null || typeof args !== "object" || Array.isArray(args))) return "Invalid params: 'arguments' must be an object (the graph's input).";
  return undefined;
}

/** The request as the SDK's transport checks it: the body already read, both types accepted. */
function sdkRequest(raw: Request): Request {
  const headers = new Headers(raw.headers);
  headers.set("accept", "application/json, text/event-stream");
  headers.set("content-type", "application/json");
  return new Request(raw.url, { method: "POST", headers });
}

/** An MCP server for one request, acting as its caller; `streaming`: its answer is an event stream, which can carry progress. */
function toolServer(deps: HttpDeps, ctx: RequestContext, requestSignal: AbortSignal, streaming: boolean): Server {
  const server = new Server({ name: "Baton", version: deps.options.version }, { capabilities: { tools: { listChanged: false } } });
  server.setRequestHandler(ListToolsRequestSchema, async (request) => {
    try {
      return await listTools(deps, ctx, request.params?.cursor);
    } catch (error) {
      throw asMcpError(deps, error);
    }
  });
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const signal = AbortSignal.any([requestSignal, extra.signal]);
    const progressToken = request.params._meta?.progressToken;
    // Progress while the run goes on, so clients that reset their timeout on progress keep waiting.
    const progress: Progress | undefined =
      streaming && progressToken !== undefined
        ? (count, message) => extra.sendNotification({ method: "notifications/progress", params: { progressToken, progress: count, message } })
        : undefined;
    try {
      return await callTool(deps, ctx, request.params.name, request.params.arguments ?? {}, signal, progress);
    } catch (error) {
      throw asMcpError(deps, error, signal);
    }
  });
  return server;
}

type Progress = (count: number, message: string) => Promise<void>;

function asMcpError(deps: HttpDeps, error: unknown, signal?: AbortSignal): McpError {
  if (error instanceof McpError) return error;
  // The client went away or cancelled the request: its run is interrupted (on_disconnect "cancel").
  if (signal?.aborted === true) return new McpError(RpcCode.serverError, "The request was cancelled before the run ended; the run was interrupted.");
  const { code, message } = rpcErrorOf(error, deps.logger, "mcp");
  return new McpError(code, message);
}

/** One page of tools: the caller's assistants from the offset `cursor`. */
async function listTools(deps: HttpDeps, ctx: RequestContext, cursor: string | undefined): Promise<{ tools: Tool[]; nextCursor?: string }> {
  const offset = cursor === undefined ? 0 : Number(cursor);
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RpcError(RpcCode.invalidParams, `Invalid cursor '${String(cursor).slice(0, 40)}': pass the nextCursor of the previous page.`);
  const assistants = await deps.assistantService.search(ctx, { limit: TOOLS_PAGE_SIZE, offset, sort_by: "created_at", sort_order: "asc" });
  const seen = new Set<string>();
  const schemas: SchemaCache = new Map();
  const tools: Tool[] = [];
  for (const assistant of assistants) {
    if (seen.has(assistant.name)) deps.logger.warn("mcp:duplicate-tool-name", { name: assistant.name, assistant_id: assistant.assistant_id });
    seen.add(assistant.name);
    tools.push({ name: assistant.name, description: assistant.description ?? "", inputSchema: { ...((await inputSchemaOrUnknown(deps, assistant, "mcp", schemas)) ?? {}), type: "object" } });
  }
  return assistants.length === TOOLS_PAGE_SIZE ? { tools, nextCursor: String(offset + TOOLS_PAGE_SIZE) } : { tools };
}

/**
 * Runs the assistant the tool names with the arguments as input, statelessly,
 * and answers its output. The run is interrupted when the call is abandoned
 * (the client went away or cancelled it); `progress` is told every keep-alive
 * interval while it goes on.
 */
async function callTool(deps: HttpDeps, ctx: RequestContext, name: string, args: Record<string, unknown>, signal: AbortSignal, progress: Progress | undefined): Promise<CallToolResult> {
  const named = (await deps.assistantService.search(ctx, { name, limit: MAX_NAMED, offset: 0 })).filter((a) => a.name === name);
  if (named.length === 0) throw new RpcError(RpcCode.invalidParams, `Unknown tool: ${name}`);
  if (named.length > 1) throw new RpcError(RpcCode.invalidParams, `Several assistants are named '${name}'; rename all but one to call it as a tool.`);
  const run = await deps.runs.create(ctx, agentRunInput(named[0]!.assistant_id, args, null, ["values"], null, "cancel"));
  let ended = false;
  const abandon = () => {
    if (!ended) deps.runs.abandon(run);
  };
  signal.addEventListener("abort", abandon, { once: true });
  let count = 0;
  const ticker =
    progress === undefined
      ? undefined
      : setInterval(() => {
          count += 1;
          progress(count, `Run ${run.run_id} is still going.`).catch(() => undefined);
        }, deps.options.keepAliveMs);
  try {
    if (signal.aborted) abandon();
    const { output } = await deps.runs.waitFinal(run, signal);
    ended = true;
    const failure = failureText(output);
    if (failure !== undefined) return { isError: true, content: [{ type: "text", text: failure }] };
    return { content: [{ type: "text", text: JSON.stringify(output ?? null) }] };
  } finally {
    ended = true;
    clearInterval(ticker);
    signal.removeEventListener("abort", abandon);
  }
}
