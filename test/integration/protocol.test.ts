/**
 * Agent Protocol v2 (`/threads/{id}/commands`, `/threads/{id}/stream/events`
 * over SSE and WebSocket): runs started by commands, their events on the
 * protocol's channels with increasing `seq`, and a `since` cursor that
 * resumes exactly (C8), over SSE and for a WebSocket client that reconnects
 * mid-run. The runs block on gates this test opens; nothing sleeps.
 * Access: `threads:read`; another user's thread is 404 on every route.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { StreamController } from "@langchain/langgraph-sdk/stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { loadConfig, loadProject } from "../../src/config.ts";
import type { Authorization, Authorizer, Resource, ResourceActions } from "../../src/core/authorizer.ts";
import type { RequestContext } from "../../src/core/context.ts";
import { createLogger, createServer, type BatonServer } from "../../src/server.ts";
import { gate } from "../fixtures/graphs/graphs.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { EXECUTION_THREADS, FIXTURES, human, REDIS_URL, SCALE_OUT } from "../helpers/server.ts";

/** Threads belong to the `x-owner` of whoever created them (a run creating its thread: threads:create_run sets metadata.owner). */
class OwnerAuthorizer implements Authorizer {
  async authorize<R extends Resource, V extends object>(ctx: RequestContext, resource: R, action: ResourceActions[R], value: V): Promise<Authorization<V>> {
    const owner = ctx.headers["x-owner"];
    if (resource !== "threads" || owner === undefined) return { value };
    if (action === "create" || action === "create_run") return { value: { ...value, metadata: { ...(value as { metadata?: object }).metadata, owner } }, filter: { owner } };
    return { value, filter: { owner } };
  }
}

let server: BatonServer;
let database: TestDatabase | undefined;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "baton-protocol-"));
  database = SCALE_OUT ? await freshDatabase("protocol") : undefined;
  const backend = database === undefined ? { executionThreads: EXECUTION_THREADS } : { databaseUrl: database.url, redisUrl: REDIS_URL, redisPrefix: `baton-test:${randomUUID()}:` };
  const config = loadConfig({ port: 0, dataDir, configPath: FIXTURES, shutdownGraceMs: 0, keepAliveMs: 500, ...backend }, {});
  const logger = createLogger({ level: "warn", format: "json", write: (line) => process.stderr.write(line) });
  server = await createServer(config, loadProject(config.configPath, {}), logger, undefined, { authorizer: new OwnerAuthorizer() });
});

afterAll(async () => {
  await server?.close(0);
  await database?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Event {
  type: "event";
  event_id: string;
  seq: number;
  method: string;
  params: { namespace: string[]; data: Record<string, unknown>; node?: string };
}

const headers = (owner = "alice") => ({ "content-type": "application/json", "x-owner": owner });

async function command(threadId: string, method: string, params: Record<string, unknown>, owner = "alice") {
  const response = await fetch(`${server.url}/threads/${threadId}/commands`, { method: "POST", headers: headers(owner), body: JSON.stringify({ id: 1, method, params }) });
  return { status: response.status, body: (await response.json()) as { type: string; result?: { run_id: string }; error?: string; message?: string } };
}

/** Reads a protocol SSE stream until `stop` says so; every frame's id and event must agree with its data. */
async function readSse(threadId: string, body: Record<string, unknown>, stop: (events: Event[]) => boolean): Promise<Event[]> {
  const abort = new AbortController();
  const response = await fetch(`${server.url}/threads/${threadId}/stream/events`, { method: "POST", headers: headers(), body: JSON.stringify(body), signal: abort.signal });
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const events: Event[] = [];
  let text = "";
  try {
    while (!stop(events)) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = text.indexOf("\n\n")) >= 0) {
        const frame = text.slice(0, end);
        text = text.slice(end + 2);
        const fields = Object.fromEntries(frame.split("\n").filter((l) => !l.startsWith(":")).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)]));
        if (fields.data === undefined) continue;
        const event = JSON.parse(fields.data) as Event;
        expect([fields.id, fields.event]).toEqual([event.event_id, event.method]);
        events.push(event);
        if (stop(events)) break;
      }
    }
  } finally {
    abort.abort();
  }
  return events;
}

const lifecycle = (events: Event[]) => events.filter((e) => e.method === "lifecycle").map((e) => e.params.data.event);
const ended = (events: Event[]) => events.some((e) => e.method === "lifecycle" && e.params.data.event !== "started");
const CHANNELS = ["lifecycle", "values", "updates", "input"];

function expectIncreasing(events: Event[]) {
  const seqs = events.map((e) => e.seq);
  expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  expect(new Set(seqs).size).toBe(seqs.length);
}

describe("protocol v2 over HTTP", () => {
  it("run.start runs the graph; the SSE stream carries its lifecycle, values and updates; since resumes exactly", async () => {
    const threadId = randomUUID(); // the thread does not exist yet: run.start creates it
    const name = `p-${randomUUID()}`;
    const g = gate(name);
    const streaming = readSse(threadId, { channels: CHANNELS }, ended);
    const started = await command(threadId, "run.start", { assistant_id: "gated", input: human(`gate:${name}`) });
    expect(started).toMatchObject({ status: 200, body: { type: "success", result: { run_id: expect.any(String) } } });
    await expect.poll(() => g.entered).toBe(1);
    g.open();
    const events = await streaming;
    expect(lifecycle(events)).toEqual(["started", "completed"]);
    expect(events.filter((e) => e.method === "updates").map((e) => e.params.node)).toEqual(["wait", "reply"]);
    const last = events.filter((e) => e.method === "values").at(-1)!;
    expect((last.params.data.messages as unknown[]).length).toBe(2);
    expectIncreasing(events);

    // Exactly the rest after any cursor, and only the channels asked for.
    const all = await readSse(threadId, { channels: CHANNELS, since: 0 }, ended);
    expect(all.map((e) => e.seq)).toEqual(events.map((e) => e.seq));
    const rest = await readSse(threadId, { channels: CHANNELS, since: events[2]!.seq }, ended);
    expect(rest.map((e) => e.seq)).toEqual(events.slice(3).map((e) => e.seq));
    const onlyUpdates = await readSse(threadId, { channels: ["updates"], since: 0 }, (got) => got.length === 2);
    expect(onlyUpdates.map((e) => e.seq)).toEqual(events.filter((e) => e.method === "updates").map((e) => e.seq));
  });

  it("an interrupt is an input.requested event; input.respond resumes it", async () => {
    const threadId = randomUUID();
    const streaming = readSse(threadId, { channels: CHANNELS }, (got) => got.some((e) => e.method === "input.requested") && ended(got));
    expect((await command(threadId, "run.start", { assistant_id: "ask", input: human("question") })).body.type).toBe("success");
    const first = await streaming;
    const request = first.find((e) => e.method === "input.requested")!;
    expect(request.params.data).toMatchObject({ interrupt_id: expect.any(String) });
    expect(lifecycle(first).at(-1)).toBe("interrupted");
    const resumed = readSse(threadId, { channels: CHANNELS, since: first.at(-1)!.seq }, ended);
    // As the official server, the result is empty; the resuming run is named in meta.
    expect((await command(threadId, "input.respond", { interrupt_id: request.params.data.interrupt_id, response: "forty-two" })).body).toMatchObject({
      type: "success",
      result: {},
      meta: { thread_id: threadId, run_id: expect.any(String) },
    });
    const second = await resumed;
    expect(lifecycle(second)).toEqual(["started", "completed"]);
    expect(second.filter((e) => e.method === "values").at(-1)!.params.data.answer).toBe("forty-two");
    // Nothing waits any more: a second response is refused, as the official server does.
    expect((await command(threadId, "input.respond", { interrupt_id: request.params.data.interrupt_id, response: "again" })).body).toMatchObject({
      type: "error",
      error: "invalid_argument",
      message: expect.stringMatching(/no pending interrupt/),
    });
  });

  it("run.start with input on a thread waiting at an interrupt resumes it with that input, as the official server does", async () => {
    const threadId = randomUUID();
    const first = readSse(threadId, { channels: CHANNELS }, (got) => got.some((e) => e.method === "input.requested") && ended(got));
    expect((await command(threadId, "run.start", { assistant_id: "ask", input: human("question") })).body.type).toBe("success");
    const interrupted = await first;
    expect(lifecycle(interrupted).at(-1)).toBe("interrupted");
    const resumed = readSse(threadId, { channels: CHANNELS, since: interrupted.at(-1)!.seq }, ended);
    expect((await command(threadId, "run.start", { assistant_id: "ask", input: "yes" })).body.type).toBe("success");
    const second = await resumed;
    expect(lifecycle(second)).toEqual(["started", "completed"]);
    const values = second.filter((e) => e.method === "values").at(-1)!.params.data;
    expect(values.answer).toBe("yes");
    // The resume went to the interrupt: the thread's messages are the question and the answer, no input appended.
    expect((values.messages as { content: string }[]).map((m) => m.content)).toEqual(["question", "answer: yes"]);
  });

  it("refuses what is malformed with what to fix, and unknown commands as protocol errors", async () => {
    const threadId = randomUUID();
    const envelope = await fetch(`${server.url}/threads/${threadId}/commands`, { method: "POST", headers: headers(), body: JSON.stringify({ method: "run.start" }) });
    expect(envelope.status).toBe(400);
    expect(await envelope.json()).toMatchObject({ type: "error", id: null, error: "invalid_argument", detail: expect.stringMatching(/id/) });
    expect((await command(threadId, "run.start", {})).body).toMatchObject({ type: "error", error: "invalid_argument", message: expect.stringMatching(/assistant_id/) });
    expect((await command(threadId, "teleport", {})).body).toMatchObject({ type: "error", error: "unknown_command" });
    const badChannel = await fetch(`${server.url}/threads/${threadId}/stream/events`, { method: "POST", headers: headers(), body: JSON.stringify({ channels: ["sideways"] }) });
    expect(badChannel.status).toBe(422);
  });
});

/** A protocol WebSocket: its messages in order, and a way to wait for some. */
async function openSocket(threadId: string, owner = "alice") {
  const ws = new WebSocket(`${server.url.replace(/^http/, "ws")}/threads/${threadId}/stream/events`, { headers: { "x-owner": owner } });
  const messages: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  ws.on("message", (data: Buffer) => {
    messages.push(JSON.parse(data.toString("utf8")) as Record<string, unknown>);
    for (const wake of waiters) wake();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const until = async (check: () => boolean) => {
    while (!check()) await new Promise<void>((resolve) => waiters.add(resolve)).finally(() => waiters.clear());
  };
  let nextId = 1;
  const send = async (method: string, params: Record<string, unknown>) => {
    const id = nextId++;
    ws.send(JSON.stringify({ id, method, params }));
    await until(() => messages.some((m) => m.id === id));
    return messages.find((m) => m.id === id) as { type: string; result: Record<string, unknown> };
  };
  const events = () => messages.filter((m) => m.type === "event") as unknown as Event[];
  return { ws, send, until, events, messages };
}

describe("protocol v2 over WebSocket", () => {
  it("a client that reconnects mid-run with since gets exactly the events it missed", async () => {
    const threadId = randomUUID();
    const name = `w-${randomUUID()}`;
    const g = gate(name);
    const first = await openSocket(threadId);
    expect((await first.send("subscription.subscribe", { channels: CHANNELS })).type).toBe("success");
    expect((await first.send("run.start", { assistant_id: "gated", input: human(`gate:${name}`) })).result.run_id).toEqual(expect.any(String));
    await expect.poll(() => g.entered).toBe(1);
    // The run waits on its gate: its start and first values have come. Drop the socket mid-run.
    await first.until(() => first.events().some((e) => e.method === "values"));
    const before = first.events();
    first.ws.terminate();
    g.open();

    const second = await openSocket(threadId);
    expect((await second.send("subscription.subscribe", { channels: CHANNELS, since: before.at(-1)!.seq })).type).toBe("success");
    await second.until(() => ended(second.events()));
    const after = second.events();

    const replay = await openSocket(threadId);
    await replay.send("subscription.subscribe", { channels: CHANNELS, since: 0 });
    await replay.until(() => ended(replay.events()));
    expect([...before, ...after].map((e) => e.seq)).toEqual(replay.events().map((e) => e.seq));
    expect(lifecycle([...before, ...after])).toEqual(["started", "completed"]);
    expectIncreasing([...before, ...after]);
    for (const socket of [second, replay]) socket.ws.close();
  });

  it("unsubscribe stops a subscription; an unknown one is a protocol error", async () => {
    const socket = await openSocket(randomUUID());
    const subscribed = await socket.send("subscription.subscribe", { channels: ["lifecycle"] });
    expect((await socket.send("subscription.unsubscribe", { subscription_id: subscribed.result.subscription_id })).type).toBe("success");
    expect(await socket.send("subscription.unsubscribe", { subscription_id: "nope" })).toMatchObject({ type: "error", error: "no_such_subscription" });
    expect(await socket.send("subscription.subscribe", { channels: [] })).toMatchObject({ type: "error", error: "invalid_argument" });
    socket.ws.send("not json");
    await socket.until(() => socket.messages.some((m) => m.id === null));
    expect(socket.messages.find((m) => m.id === null)).toMatchObject({ type: "error", error: "invalid_argument" });
    socket.ws.close();
  });

  it("closes a socket that sends a message over 1 MB, and goes on serving", async () => {
    const socket = await openSocket(randomUUID());
    const closed = new Promise<number>((resolve) => socket.ws.once("close", (code: number) => resolve(code)));
    socket.ws.send(JSON.stringify({ id: 1, method: "run.start", params: { input: "x".repeat(1024 * 1024 + 1) } }));
    expect(await closed).toBe(1009);
    const again = await openSocket(randomUUID());
    expect((await again.send("subscription.subscribe", { channels: ["values"] })).type).toBe("success");
    again.ws.close();
  });
});

describe("protocol v2 through the official SDK (client.threads.stream)", () => {
  it.each(["sse", "websocket"] as const)("over %s: run.start, then the run's final values", async (transport) => {
    const client = new Client({ apiUrl: server.url });
    // Node 20 has no global WebSocket: the SDK takes a factory (the `ws` client).
    const thread = client.threads.stream(randomUUID(), { assistantId: "echo", transport, webSocketFactory: (url: string) => new WebSocket(url) as unknown as globalThis.WebSocket });
    try {
      await thread.run.start({ input: human(`hello over ${transport}`) });
      const output = (await thread.output) as { messages: { content: string }[] };
      expect(output.messages.map((m) => m.content)).toEqual([`hello over ${transport}`, `echo: hello over ${transport}`]);
    } finally {
      await thread.close();
    }
  });
});

describe("protocol v2 state.get through the official SDK", () => {
  const webSocketFactory = (url: string) => new WebSocket(url) as unknown as globalThis.WebSocket;

  it.each(["sse", "websocket"] as const)("over %s: the thread's values and checkpoint, only the keys asked for, and nothing for a new thread", async (transport) => {
    const client = new Client({ apiUrl: server.url });
    const threadId = randomUUID();
    const thread = client.threads.stream(threadId, { assistantId: "echo", transport, webSocketFactory });
    try {
      // A thread nothing has run on yet: no values, no checkpoint.
      await client.threads.create({ threadId });
      expect(await thread.state.get({ namespace: [] })).toEqual({ values: {} });
      await thread.run.start({ input: human("what is saved") });
      await thread.output;
      const saved = await client.threads.getState(threadId);
      expect(await thread.state.get({ namespace: [] })).toEqual({ values: saved.values, checkpoint: { id: saved.checkpoint.checkpoint_id, ns: "" } });
      expect((await thread.state.get({ namespace: [], keys: ["messages"] })).values).toEqual(saved.values);
      expect((await thread.state.get({ namespace: [], keys: ["not_a_channel"] })).values).toEqual({});
      // A subgraph's state is not served: refused by name rather than answered with the root's.
      await expect(thread.state.get({ namespace: ["child:1"] })).rejects.toThrow(/namespace/);
    } finally {
      await thread.close();
    }
  });

  it("is refused for another user's thread, as the thread's other routes are", async () => {
    const threadId = randomUUID();
    expect((await command(threadId, "run.start", { assistant_id: "echo", input: human("mine") }, "alice")).body.type).toBe("success");
    const asBob = await command(threadId, "state.get", {}, "bob");
    expect(asBob.status).toBe(404);
  });
});

describe("protocol v2 agent.getTree through the official SDK", () => {
  const webSocketFactory = (url: string) => new WebSocket(url) as unknown as globalThis.WebSocket;

  it.each(["sse", "websocket"] as const)("over %s: the run's graph and the subgraphs its events named, with their statuses", async (transport) => {
    const client = new Client({ apiUrl: server.url });
    const threadId = randomUUID();
    const thread = client.threads.stream(threadId, { assistantId: "nested", transport, webSocketFactory });
    try {
      await thread.run.start({ input: human("deep") });
      await thread.output;
      const { tree } = (await thread.agent.getTree()) as { tree: unknown };
      // `nested` runs the subgraph `child` (whose node `inner` streams as a namespace of its own), then the node
      // `after`, whose message events are namespaced by its task too; each is a node of the tree, by namespace.
      const child = expect.stringMatching(/^child:/) as string;
      expect(tree).toEqual({
        namespace: [],
        status: "completed",
        graph_name: "nested",
        children: [
          { namespace: [expect.stringMatching(/^after:/)], status: "completed", graph_name: "after" },
          {
            namespace: [child],
            status: "completed",
            graph_name: "child",
            children: [{ namespace: [child, expect.stringMatching(/^inner:/)], status: "completed", graph_name: "inner" }],
          },
        ],
      });
    } finally {
      await thread.close();
    }
  });

  it("answers for the run asked for (else the latest; running while it runs), and refuses an unknown run or a thread without runs", async () => {
    const threadId = randomUUID();
    const first = await command(threadId, "run.start", { assistant_id: "echo", input: human("one") });
    const name = `tree-${randomUUID()}`;
    const g = gate(name);
    const second = await command(threadId, "run.start", { assistant_id: "gated", input: human(`gate:${name}`) });
    const tree = async (params: Record<string, unknown>) => {
      const response = await fetch(`${server.url}/threads/${threadId}/commands`, { method: "POST", headers: headers(), body: JSON.stringify({ id: 7, method: "agent.getTree", params }) });
      return (await response.json()) as { type: string; result?: { tree: { status: string; graph_name: string } }; error?: string; meta?: { run_id: string } };
    };
    const latest = await tree({});
    expect(latest).toMatchObject({ type: "success", result: { tree: { namespace: [], status: "running", graph_name: "gated" } }, meta: { run_id: second.body.result!.run_id } });
    g.open();
    const earlier = await tree({ run_id: first.body.result!.run_id });
    expect(earlier.result?.tree).toMatchObject({ graph_name: "echo" });
    expect((await tree({ run_id: randomUUID() })).error).toBe("no_such_run");
    expect((await tree({ run_id: 5 })).error).toBe("invalid_argument");
    const empty = randomUUID();
    await fetch(`${server.url}/threads`, { method: "POST", headers: headers(), body: JSON.stringify({ thread_id: empty }) });
    const none = await fetch(`${server.url}/threads/${empty}/commands`, { method: "POST", headers: headers(), body: JSON.stringify({ id: 1, method: "agent.getTree", params: {} }) });
    expect(((await none.json()) as { error: string }).error).toBe("no_such_run");
    expect((await command(threadId, "agent.getTree", {}, "bob")).status).toBe(404);
  });
});

describe("protocol v2 messages and tools through the official SDK", () => {
  const webSocketFactory = (url: string) => new WebSocket(url) as unknown as globalThis.WebSocket;

  it.each(["sse", "websocket"] as const)("over %s: a model's tokens arrive as message deltas, in order, that make the final message", async (transport) => {
    const client = new Client({ apiUrl: server.url });
    const thread = client.threads.stream(randomUUID(), { assistantId: "tokens", transport, webSocketFactory });
    try {
      const deltas: string[] = [];
      const streamed = (async () => {
        for await (const message of thread.messages) {
          for await (const delta of message.text) deltas.push(delta);
          return message;
        }
        return undefined;
      })();
      await thread.run.start({ input: human("hi") });
      const message = await streamed;
      const output = (await thread.output) as { messages: { id: string; content: unknown }[] };
      const final = output.messages.at(-1)!;
      // One delta per token of "hello world" (the fixture model streams it character by character).
      expect(deltas).toEqual([..."hello world"]);
      expect(message?.id).toBe(final.id);
      expect(await message?.text).toBe("hello world");
      expect(JSON.stringify(final.content)).toContain("hello world");
    } finally {
      await thread.close();
    }
  });

  it.each(["sse", "websocket"] as const)("over %s: the StreamController behind useStream() shows the model's message while it streams", async (transport) => {
    const name = `tokens-${randomUUID()}`;
    const g = gate(name);
    const controller = new StreamController({ assistantId: "gated_tokens", client: new Client({ apiUrl: server.url }), transport, webSocketFactory });
    const texts: string[] = [];
    const changed = new Set<() => void>();
    const unsubscribe = controller.rootStore.subscribe(() => {
      const last = controller.rootStore.getSnapshot().messages.at(-1);
      if (last?.type === "ai" && last.text !== texts.at(-1)) texts.push(last.text);
      for (const wake of changed) wake();
    });
    const until = async (check: () => boolean) => {
      while (!check()) await new Promise<void>((resolve) => changed.add(resolve)).finally(() => changed.clear());
    };
    try {
      const submitted = controller.submit({ messages: [{ type: "human", content: `gate:${name}` }] });
      // The model has streamed its first token and waits on the gate: the UI shows the partial message.
      await until(() => texts.includes("hello "));
      expect(g.entered).toBe(1);
      g.open();
      await submitted;
      await until(() => texts.at(-1) === "hello world");
      expect(texts).toEqual(["hello ", "hello world"]);
      expect(controller.rootStore.getSnapshot().messages.map((m) => m.type)).toEqual(["human", "ai"]);
    } finally {
      unsubscribe();
      await controller.dispose();
    }
  });

  it.each(["sse", "websocket"] as const)("over %s: a tool call is assembled from the tools channel with its input and output", async (transport) => {
    const client = new Client({ apiUrl: server.url });
    const thread = client.threads.stream(randomUUID(), { assistantId: "tool_use", transport, webSocketFactory });
    try {
      const calls = (async () => {
        for await (const call of thread.toolCalls) return { name: call.name, callId: call.callId, input: call.input, output: await call.output };
        return undefined;
      })();
      await thread.run.start({ input: human("add") });
      expect(await calls).toMatchObject({ name: "add", callId: "call-add", input: { a: 2, b: 3 } });
      expect(JSON.stringify((await calls)?.output)).toContain("5");
      await thread.output;
    } finally {
      await thread.close();
    }
  });

  it("the messages channel resumes exactly after a since cursor, with the node that streamed; checkpoints come before values", async () => {
    const threadId = randomUUID();
    expect((await command(threadId, "run.start", { assistant_id: "tokens", input: human("hi") })).body.type).toBe("success");
    const events = await readSse(threadId, { channels: ["messages", "lifecycle"], since: 0 }, ended);
    const messages = events.filter((e) => e.method === "messages");
    expect(messages.map((e) => e.params.data.event)).toEqual(["message-start", "content-block-start", ...Array(11).fill("content-block-delta"), "content-block-finish", "message-finish"]);
    expect(new Set(messages.map((e) => e.params.node))).toEqual(new Set(["model"]));
    expect(new Set(messages.map((e) => e.params.data.run_id)).size).toBe(1);
    expect(messages[0]!.params.namespace).toEqual([expect.stringMatching(/^model:/)]);
    const rest = await readSse(threadId, { channels: ["messages", "lifecycle"], since: messages[4]!.seq }, ended);
    expect(rest.map((e) => e.seq)).toEqual(events.filter((e) => e.seq > messages[4]!.seq).map((e) => e.seq));
    // The checkpoints channel (which useStream's root subscription asks for): each step's envelope, just before its values.
    const steps = await readSse(threadId, { channels: ["checkpoints", "values", "lifecycle"], namespaces: [[]], depth: 0, since: 0 }, ended);
    const root = steps.filter((e) => e.method !== "lifecycle").map((e) => (e.method === "checkpoints" ? `checkpoint ${String(e.params.data.step)}` : "values"));
    expect(root).toEqual(["checkpoint 0", "values", "checkpoint 1", "values"]);
    expect(steps.find((e) => e.method === "checkpoints")!.params.data).toMatchObject({ id: expect.any(String), parent_id: expect.any(String), source: "loop" });
  });
});

describe("protocol v2 access", () => {
  it("answers 404 for another user's thread on commands, SSE and the WebSocket upgrade", async () => {
    const threadId = randomUUID();
    expect((await command(threadId, "run.start", { assistant_id: "echo", input: human("mine") })).body.type).toBe("success");
    expect((await command(threadId, "run.start", { assistant_id: "echo", input: human("theirs") }, "mallory")).status).toBe(404);
    const sse = await fetch(`${server.url}/threads/${threadId}/stream/events`, { method: "POST", headers: headers("mallory"), body: JSON.stringify({ channels: ["values"] }) });
    expect(sse.status).toBe(404);
    await expect(openSocket(threadId, "mallory")).rejects.toThrow(/404/);
  });
});
