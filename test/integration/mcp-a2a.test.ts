/**
 * MCP and A2A (issue 14, item 5): the official MCP client (Client and
 * StreamableHTTPClientTransport from @modelcontextprotocol/sdk) and plain
 * A2A JSON-RPC requests against a Baton server: assistants as tools, tool
 * calls that run fixture graphs (concurrently, without mixing answers),
 * errors as JSON-RPC errors (never a 500), A2A tasks on threads, the agent
 * card, http.disable_mcp / disable_a2a, and the access seam under a
 * project's auth.
 */
import { join } from "node:path";
import { Role, TaskState, type Message as A2aClientMessage } from "@a2a-js/sdk";
import { isLegacyAgentCard, LegacyJsonRpcTransport, parseLegacyAgentCard } from "@a2a-js/sdk/compat/v0_3/client";
import { Client as McpClient } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CallToolResultSchema, ErrorCode, McpError, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gate } from "../fixtures/graphs/graphs.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

const DISABLED = join(import.meta.dirname, "../fixtures/mcp-a2a/langgraph.disabled.json");
const AUTH = join(import.meta.dirname, "../fixtures/auth/langgraph.json");
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let t: TestServer;
beforeAll(async () => {
  t = await startServer();
}, 60_000);
afterAll(async () => {
  await t?.close();
});

async function mcpClient(url: string, headers: Record<string, string> = {}): Promise<McpClient> {
  const client = new McpClient({ name: "baton-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { requestInit: { headers } }));
  return client;
}

const textOf = (result: CallToolResult) => (result.content[0] as { type: "text"; text: string }).text;
const lastMessage = (output: unknown) => (output as { messages: { content: string }[] }).messages.at(-1)!.content;

async function rpcError(call: Promise<unknown>): Promise<McpError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(McpError);
  return error as McpError;
}

describe("MCP", () => {
  it("lists the assistants as tools: name, description, the graph's input schema", async () => {
    const created = await t.client.assistants.create({ graphId: "typed", name: "mcp-typed-tool", description: "Answers a question." });
    const client = await mcpClient(t.url);
    try {
      const { tools } = await client.listTools();
      const names = tools.map((tool) => tool.name);
      expect(names).toEqual(expect.arrayContaining(["echo", "typed", "mcp-typed-tool"]));
      const typed = tools.find((tool) => tool.name === "mcp-typed-tool")!;
      expect(typed.description).toBe("Answers a question.");
      expect(typed.inputSchema).toMatchObject({ type: "object", properties: { question: { type: "string" } } });
      expect(tools.find((tool) => tool.name === "echo")!.inputSchema).toMatchObject({ type: "object", properties: { messages: expect.anything() } });
      expect(client.getServerVersion()?.name).toBe("Baton");
    } finally {
      await client.close();
      await t.client.assistants.delete(created.assistant_id);
    }
  });

  it("calls a tool: a stateless run of the assistant with the arguments as input, answering its output", async () => {
    const client = await mcpClient(t.url);
    try {
      const echo = (await client.callTool({ name: "echo", arguments: { messages: [{ role: "user", content: "hi" }] } })) as CallToolResult;
      expect(echo.isError).toBeFalsy();
      expect(lastMessage(JSON.parse(textOf(echo)))).toBe("echo: hi");
      const typed = (await client.callTool({ name: "typed", arguments: { question: "why" } })) as CallToolResult;
      expect(JSON.parse(textOf(typed))).toEqual({ question: "why", answer: "you asked: why" });
      // Stateless: the run's temporary thread is gone, as after POST /runs/wait.
      expect(await t.client.threads.search({ limit: 100 })).not.toContainEqual(expect.objectContaining({ values: expect.objectContaining({ question: "why" }) }));
    } finally {
      await client.close();
    }
  });

  it("answers concurrent tool calls each with its own run's output, whatever order they end in", async () => {
    const client = await mcpClient(t.url);
    try {
      const names = Array.from({ length: 6 }, (_, i) => `mcp-${i}-${crypto.randomUUID()}`);
      const gates = names.map((name) => gate(name));
      const calls = names.map((name) => client.callTool({ name: "gated", arguments: { messages: [{ role: "user", content: `gate:${name}` }] } }) as Promise<CallToolResult>);
      await expect.poll(() => gates.every((g) => g.entered === 1), { timeout: 20_000 }).toBe(true);
      for (const g of [...gates].reverse()) g.open();
      const answers = await Promise.all(calls);
      expect(answers.map((answer) => lastMessage(JSON.parse(textOf(answer))))).toEqual(names.map((name) => `echo: gate:${name}`));
    } finally {
      await client.close();
    }
  });

  it("answers a long tool call as an event stream with progress, so a client that resets its timeout on progress waits past it", async () => {
    const quick = await startServer({ keepAliveMs: 200 });
    const client = await mcpClient(quick.url);
    try {
      const name = `mcp-progress-${crypto.randomUUID()}`;
      const g = gate(name);
      const progress: number[] = [];
      // Held until twenty progress notifications (about 4 s) have come: past the 3 s timeout, which each one resets.
      const answer = (await client.callTool({ name: "gated", arguments: { messages: [{ role: "user", content: `gate:${name}` }] } }, CallToolResultSchema, {
        timeout: 3_000,
        resetTimeoutOnProgress: true,
        onprogress: (p) => {
          progress.push(p.progress);
          if (progress.length === 20) g.open();
        },
      })) as CallToolResult;
      expect(lastMessage(JSON.parse(textOf(answer)))).toBe(`echo: gate:${name}`);
      expect(progress.slice(0, 20)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(g.entered).toBe(1);
      // The event stream's content type, as the SDK's transport reads it.
      const raw = await fetch(`${quick.url}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "echo", arguments: { messages: [{ role: "user", content: "sse" }] } } }),
      });
      expect(raw.headers.get("content-type")).toMatch(/text\/event-stream/);
      const data = (await raw.text()).split("\n").filter((line) => line.startsWith("data: "));
      expect(data).toHaveLength(1);
      expect(JSON.parse(data[0]!.slice(6))).toMatchObject({ jsonrpc: "2.0", id: 3, result: { content: [{ type: "text" }] } });
    } finally {
      await client.close();
      await quick.close();
    }
  });

  it("interrupts the run of a tool call whose client goes away (on_disconnect cancel)", async () => {
    const busy = async () => (await t.client.threads.search({ limit: 1000, status: "busy" })).map((thread) => thread.thread_id);
    const before = new Set(await busy());
    const client = await mcpClient(t.url);
    const name = `mcp-gone-${crypto.randomUUID()}`;
    const g = gate(name);
    const call = client.callTool({ name: "gated", arguments: { messages: [{ role: "user", content: `gate:${name}` }] } }).catch((e: unknown) => e);
    await expect.poll(() => g.entered, { timeout: 20_000 }).toBe(1);
    // The run's temporary thread, busy while the run holds at its gate ...
    const [thread] = (await busy()).filter((id) => !before.has(id));
    expect(thread).toBeDefined();
    expect((await t.client.runs.list(thread!)).map((run) => run.status)).toEqual(["running"]);
    await client.close();
    await call;
    // ... goes with the run, which only ends because it was interrupted (the gate never opens).
    await expect.poll(() => t.client.threads.get(thread!).then(() => "there", () => "gone"), { timeout: 20_000 }).toBe("gone");
    expect(g.entered).toBe(1);
  });

  it("answers a graph's failure as a tool error, and bad calls as MCP errors, never a 500", async () => {
    const client = await mcpClient(t.url);
    try {
      const failed = (await client.callTool({ name: "fail", arguments: { messages: [{ role: "user", content: "x" }] } })) as CallToolResult;
      expect(failed.isError).toBe(true);
      expect(textOf(failed)).toMatch(/boom: the fixture failed on purpose/);
      const unknown = await rpcError(client.callTool({ name: "no-such-tool", arguments: {} }));
      expect(unknown.code).toBe(ErrorCode.InvalidParams);
      expect(unknown.message).toMatch(/Unknown tool: no-such-tool/);
      // Arguments that are not an object: the SDK's schema refuses them.
      const notObject = await rpcError(client.request({ method: "tools/call", params: { name: "echo", arguments: "hi" as unknown as Record<string, unknown> } }, CallToolResultSchema));
      expect(notObject.code).toBe(ErrorCode.InvalidParams);
      // Arguments past the request limits are refused before any run.
      const deep = (depth: number): unknown => (depth === 0 ? 1 : { a: deep(depth - 1) });
      // (an HTTP 422 with the JSON-RPC error: the request's id is not known before the body is read)
      const tooDeep = await client.callTool({ name: "echo", arguments: { x: deep(150) } }).catch((e: unknown) => e as Error & { code?: number });
      expect(tooDeep).toMatchObject({ code: 422, message: expect.stringMatching(/deep|depth|nest/i) });
      const badCursor = await rpcError(client.listTools({ cursor: "not-a-number" }));
      expect(badCursor.code).toBe(ErrorCode.InvalidParams);
    } finally {
      await client.close();
    }
  });

  it("lists an assistant whose graph cannot be built with an open schema, and every other tool as usual", async () => {
    const broken = await t.client.assistants.create({ graphId: "picky", name: `mcp-broken-${crypto.randomUUID()}`, config: { configurable: { broken: true } } });
    const client = await mcpClient(t.url);
    try {
      const { tools } = await client.listTools();
      expect(tools.find((tool) => tool.name === broken.name)?.inputSchema).toEqual({ type: "object" });
      expect(tools.find((tool) => tool.name === "picky")!.inputSchema).toMatchObject({ type: "object", properties: { messages: expect.anything() as unknown } });
      expect(tools.find((tool) => tool.name === "echo")!.inputSchema).toMatchObject({ type: "object", properties: { messages: expect.anything() as unknown } });
      // Its agent card and messages are served as well (the schema is only unknown).
      expect((await fetch(`${t.url}/.well-known/agent-card.json?assistant_id=${broken.assistant_id}`)).status).toBe(200);
    } finally {
      await client.close();
      await t.client.assistants.delete(broken.assistant_id);
    }
  });

  it("pages tools 100 at a time with nextCursor", async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const created = await Promise.all(Array.from({ length: 105 }, (_, i) => t.client.assistants.create({ graphId: "echo", name: `page-${tag}-${i}` })));
    const client = await mcpClient(t.url);
    try {
      const names: string[] = [];
      const pages: number[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.listTools(cursor === undefined ? undefined : { cursor });
        pages.push(page.tools.length);
        names.push(...page.tools.map((tool) => tool.name));
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      expect(pages[0]).toBe(100);
      expect(names.filter((name) => name.startsWith(`page-${tag}-`)).sort()).toEqual(created.map((a) => a.name).sort());
      expect(new Set(names).size).toBe(names.length);
    } finally {
      await client.close();
      await Promise.all(created.map((a) => t.client.assistants.delete(a.assistant_id)));
    }
  });

  it("answers HTTP mistakes with JSON-RPC errors and the statuses of the official server", async () => {
    const post = (body: string, headers: Record<string, string>) => fetch(`${t.url}/mcp`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
    const both = { accept: "application/json, text/event-stream" };
    const noAccept = await post(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }), { accept: "text/html" });
    expect(noAccept.status).toBe(400);
    expect(await noAccept.json()).toMatchObject({ jsonrpc: "2.0", error: { code: -32600 } });
    const broken = await post("{not json", both);
    expect(broken.status).toBe(400);
    expect(await broken.json()).toMatchObject({ error: { code: -32700 } });
    expect((await post("[]", both)).status).toBe(400);
    expect((await post(JSON.stringify({ jsonrpc: "1.0", id: 1, method: "tools/list" }), both)).status).toBe(400);
    // A notification is accepted with 202 and no body, even a tools/call one with bad params.
    expect((await post(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }), both)).status).toBe(202);
    const badNotification = await post(JSON.stringify({ jsonrpc: "2.0", method: "tools/call", params: { name: 7 } }), both);
    expect(badNotification.status).toBe(202);
    expect(await badNotification.text()).toBe("");
    // No Accept header admits anything (RFC 9110): answered as JSON.
    const noHeader = await fetch(`${t.url}/mcp`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 4, method: "tools/list" }) });
    expect(noHeader.status).toBe(200);
    expect(noHeader.headers.get("content-type")).toMatch(/application\/json/);
    const unknownMethod = await post(JSON.stringify({ jsonrpc: "2.0", id: 7, method: "no/such" }), both);
    expect(unknownMethod.status).toBe(200);
    expect(await unknownMethod.json()).toMatchObject({ id: 7, error: { code: -32601 } });
    // Only application/json is enough, as on the official server.
    const listed = await post(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }), { accept: "application/json" });
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { result: { tools: unknown[] } }).result.tools.length).toBeGreaterThan(0);
    expect((await fetch(`${t.url}/mcp`, { headers: { accept: "text/event-stream" } })).status).toBe(405);
    expect((await fetch(`${t.url}/mcp/`, { method: "DELETE" })).status).toBe(404);
  });
});

/** Sends one A2A JSON-RPC request; answers the parsed envelope and the status. */
async function a2a(url: string, assistant: string, method: string, params: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}/a2a/${assistant}`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json", ...headers },
    body: JSON.stringify({ jsonrpc: "2.0", id: "r1", method, params }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Sends one A2A message/stream request; answers the JSON-RPC responses of its events. */
type StreamResult = {
  kind: string;
  taskId: string;
  contextId: string;
  status: { state: string; message?: { parts: { text: string }[] } };
  final?: boolean;
  artifact: { artifactId: string; parts: { kind: string; text: string }[] };
  append?: boolean;
  lastChunk?: boolean;
};
async function a2aStream(url: string, assistant: string, params: unknown): Promise<{ id: unknown; result: StreamResult }[]> {
  const response = await fetch(`${url}/a2a/${assistant}`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: "s1", method: "message/stream", params }),
  });
  expect(response.headers.get("content-type")).toMatch(/text\/event-stream/);
  return (await response.text())
    .split("\n")
    .filter((line) => line.startsWith("data: "))
    .map((line) => JSON.parse(line.slice(6)) as { id: unknown; result: StreamResult });
}

const userMessage = (text: string, contextId?: string) => ({ message: { role: "user", messageId: crypto.randomUUID(), parts: [{ kind: "text", text }], ...(contextId === undefined ? {} : { contextId }) } });
type Task = { kind: string; id: string; taskId?: string; contextId: string; status: { state: string; message?: { parts: { text: string }[] } }; artifacts?: { parts: { kind: string; text: string }[] }[]; history: { role: string; parts: { text: string }[] }[] };

describe("A2A", () => {
  it("serves each assistant's agent card", async () => {
    const echo = await t.client.assistants.get("echo");
    const response = await fetch(`${t.url}/.well-known/agent-card.json?assistant_id=${echo.assistant_id}`);
    expect(response.status).toBe(200);
    const card = (await response.json()) as Record<string, unknown>;
    expect(card).toMatchObject({
      protocolVersion: "0.3.0",
      name: "echo",
      url: `${t.url}/a2a/${echo.assistant_id}`,
      preferredTransport: "JSONRPC",
      capabilities: { streaming: true, pushNotifications: false },
      skills: [{ id: `${echo.assistant_id}-main`, metadata: { inputSchema: { supportsA2A: true } } }],
    });
    expect((await fetch(`${t.url}/a2a/echo/.well-known/agent-card.json`)).status).toBe(200);
    expect((await fetch(`${t.url}/.well-known/agent-card.json`)).status).toBe(400);
    expect((await fetch(`${t.url}/.well-known/agent-card.json?assistant_id=${crypto.randomUUID()}`)).status).toBe(404);
  });

  it("message/send runs the assistant on the context's thread and answers the completed task", async () => {
    const first = await a2a(t.url, "echo", "message/send", userMessage("hello"));
    expect(first.status).toBe(200);
    const task = first.body.result as Task;
    expect(task).toMatchObject({ kind: "task", status: { state: "completed" } });
    expect(task.contextId).toMatch(UUID);
    expect(task.artifacts![0]!.parts[0]).toEqual({ kind: "text", text: "echo: hello" });
    // The context is a thread the caller can read, and the task is its run.
    expect((await t.client.runs.get(task.contextId, task.id)).status).toBe("success");
    const second = (await a2a(t.url, "echo", "message/send", userMessage("again", task.contextId))).body.result as Task;
    expect(second.contextId).toBe(task.contextId);
    expect(second.artifacts![0]!.parts[0]!.text).toBe("echo: again");
    expect(second.history.map((m) => [m.role, m.parts[0]!.text])).toEqual([
      ["user", "hello"],
      ["agent", "echo: hello"],
      ["user", "again"],
      ["agent", "echo: again"],
    ]);
    const got = await a2a(t.url, "echo", "tasks/get", { id: task.id, contextId: task.contextId, historyLength: 2 });
    expect(got.body.result).toMatchObject({ id: task.id, status: { state: "completed" } });
    expect((got.body.result as Task).history).toHaveLength(2);
  });

  it("answers concurrent messages to one context each with its own run's answer (queued on the thread)", async () => {
    const contextId = crypto.randomUUID();
    const texts = Array.from({ length: 6 }, (_, i) => `turn ${i} ${crypto.randomUUID()}`);
    const answers = await Promise.all(texts.map((text) => a2a(t.url, "echo", "message/send", userMessage(text, contextId))));
    expect(answers.map((answer) => (answer.body.result as Task).artifacts![0]!.parts[0]!.text)).toEqual(texts.map((text) => `echo: ${text}`));
    expect(new Set(answers.map((answer) => (answer.body.result as Task).id)).size).toBe(texts.length);
    expect(await t.client.runs.list(contextId)).toHaveLength(texts.length);
  });

  it("takes data parts as input fields, and refuses text parts for a graph without messages", async () => {
    const data = await a2a(t.url, "typed", "message/send", { message: { role: "user", messageId: "m1", parts: [{ kind: "data", data: { question: "why" } }] } });
    expect(JSON.parse((data.body.result as Task).artifacts![0]!.parts[0]!.text)).toEqual({ question: "why", answer: "you asked: why" });
    const text = await a2a(t.url, "typed", "message/send", userMessage("why"));
    expect(text.body.error).toMatchObject({ code: -32602, message: expect.stringMatching(/no 'messages' input/) });
    const file = await a2a(t.url, "echo", "message/send", { message: { role: "user", messageId: "m1", parts: [{ kind: "file", file: { uri: "https://x" } }] } });
    expect(file.body.error).toMatchObject({ code: -32005 });
  });

  it("a failing graph gives a failed task with its error, one stopped at interrupt() an input-required task", async () => {
    const failed = (await a2a(t.url, "fail", "message/send", userMessage("x"))).body.result as Task;
    expect(failed.status.state).toBe("failed");
    expect(failed.status.message!.parts[0]!.text).toMatch(/boom/);
    const asking = (await a2a(t.url, "ask", "message/send", userMessage("x"))).body.result as Task;
    expect(asking.status.state).toBe("input-required");
    expect(asking.status.message!.parts[0]!.text).toMatch(/Proceed\?/);
    // The next message in the context answers the interrupt.
    const resumed = (await a2a(t.url, "ask", "message/send", userMessage("yes", asking.contextId))).body.result as Task;
    expect(resumed.status.state).toBe("completed");
    expect(resumed.artifacts![0]!.parts[0]!.text).toBe("answer: yes");
  });

  it("message/stream answers server-sent JSON-RPC responses: the task, working, and the final status", async () => {
    const response = await fetch(`${t.url}/a2a/echo`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "message/stream", params: userMessage("streamed") }),
    });
    expect(response.headers.get("content-type")).toMatch(/text\/event-stream/);
    const results = (await response.text())
      .split("\n")
      .filter((line) => line.startsWith("data: "))
      .map((line) => JSON.parse(line.slice(6)) as { id: number; result: { kind: string; status: { state: string; message?: { parts: { text: string }[] } }; final?: boolean } });
    expect(results.every((r) => r.id === 9)).toBe(true);
    expect(results[0]!.result).toMatchObject({ kind: "task", status: { state: "submitted" } });
    expect(results.some((r) => r.result.kind === "status-update" && r.result.status.state === "working")).toBe(true);
    const last = results.at(-1)!.result;
    expect(last).toMatchObject({ kind: "status-update", final: true, status: { state: "completed" } });
    expect(last.status.message!.parts[0]!.text).toBe("echo: streamed");
    const artifact = results.filter((r) => r.result.kind === "artifact-update").map((r) => (r.result as unknown as { artifact: { parts: { text: string }[] } }).artifact.parts[0]!.text);
    expect(artifact.join("")).toBe("echo: streamed");
  });

  it("honours params.configuration: blocking false answers at once, historyLength trims the history, push notifications are refused", async () => {
    const contextId = crypto.randomUUID();
    await a2a(t.url, "echo", "message/send", userMessage("first", contextId));
    const trimmed = (await a2a(t.url, "echo", "message/send", { ...userMessage("second", contextId), configuration: { historyLength: 1 } })).body.result as Task;
    expect(trimmed.history.map((m) => m.parts[0]!.text)).toEqual(["echo: second"]);
    const none = (await a2a(t.url, "echo", "message/send", { ...userMessage("third", contextId), configuration: { historyLength: 0 } })).body.result as Task;
    expect(none.history).toEqual([]);

    const name = `a2a-nonblocking-${crypto.randomUUID()}`;
    const g = gate(name);
    const started = await a2a(t.url, "gated", "message/send", { ...userMessage(`gate:${name}`), configuration: { blocking: false } });
    // Answered while the run is held at its gate.
    const task = started.body.result as Task;
    expect(["submitted", "working"]).toContain(task.status.state);
    expect(g.entered).toBeLessThanOrEqual(1);
    g.open();
    await expect.poll(async () => ((await a2a(t.url, "gated", "tasks/get", { id: task.id, contextId: task.contextId })).body.result as Task).status.state, { timeout: 20_000 }).toBe("completed");

    const push = await a2a(t.url, "echo", "message/send", { ...userMessage("x"), configuration: { pushNotificationConfig: { url: "https://example.com/hook" } } });
    expect(push.body.error).toMatchObject({ code: -32003 });
    expect(push.body.result).toBeUndefined();
    const tooLong = await a2a(t.url, "echo", "message/send", { ...userMessage("x"), configuration: { historyLength: 11 } });
    expect(tooLong.status).toBe(400);
  });

  it("message/stream sends the AI's tokens as one artifact (tool results left out), then the final status", async () => {
    const results = await a2aStream(t.url, "tool_agent", userMessage("add 2 and 3"));
    const kinds = results.map((r) => r.result.kind);
    expect(kinds[0]).toBe("task");
    expect(kinds.at(-1)).toBe("status-update");
    // Only status updates without text while working: the tokens go to the artifact.
    const updates = results.filter((r) => r.result.kind === "status-update").map((r) => r.result);
    expect(updates.slice(0, -1).every((u) => u.status.state === "working" && u.status.message === undefined && !u.final)).toBe(true);
    const chunks = results.filter((r) => r.result.kind === "artifact-update").map((r) => r.result);
    // A streaming model: several tokens, all appended to one artifact, the last one marked.
    expect(chunks.length).toBeGreaterThan(2);
    expect(new Set(chunks.map((chunk) => chunk.artifact.artifactId)).size).toBe(1);
    expect(chunks.every((chunk) => chunk.append)).toBe(true);
    expect(chunks.map((chunk) => chunk.lastChunk)).toEqual([...chunks.slice(1).map(() => false), true]);
    // The tool's result ("5" on its own) is not agent text.
    expect(chunks.map((chunk) => chunk.artifact.parts.map((part) => part.text).join("")).join("")).toBe("the sum is 5");
    expect(kinds.indexOf("artifact-update")).toBeLessThan(kinds.length - 1);
    const last = results.at(-1)!.result;
    expect(last).toMatchObject({ final: true, status: { state: "completed" } });
    expect(last.status.message!.parts[0]!.text).toBe("the sum is 5");
  });

  it("message/stream ends a task that waits for input with the graph's question, not the user's text", async () => {
    const results = await a2aStream(t.url, "ask", userMessage("please decide"));
    const last = results.at(-1)!.result;
    expect(last).toMatchObject({ kind: "status-update", final: true, status: { state: "input-required" } });
    expect(last.status.message!.parts[0]!.text).toMatch(/Proceed\?/);
    expect(last.status.message!.parts[0]!.text).not.toContain("please decide");
    // The same status text as tasks/get gives.
    const got = (await a2a(t.url, "ask", "tasks/get", { id: last.taskId, contextId: last.contextId })).body.result as Task;
    expect(got.status.message!.parts[0]!.text).toBe(last.status.message!.parts[0]!.text);
  });

  it("tasks/cancel stops a running task", async () => {
    const contextId = crypto.randomUUID();
    const name = `a2a-${crypto.randomUUID()}`;
    const g = gate(name);
    const pending = a2a(t.url, "gated", "message/send", userMessage(`gate:${name}`, contextId));
    await expect.poll(() => g.entered, { timeout: 20_000 }).toBe(1);
    const [run] = await t.client.runs.list(contextId);
    const canceled = await a2a(t.url, "gated", "tasks/cancel", { id: run!.run_id, contextId });
    expect(canceled.body.result).toMatchObject({ id: run!.run_id, status: { state: "canceled" } });
    expect(((await pending).body.result as Task).status.state).toBe("canceled");
    expect((await a2a(t.url, "gated", "tasks/cancel", { id: run!.run_id, contextId })).body.error).toMatchObject({ code: -32002 });
  });

  it("answers bad JSON-RPC with JSON-RPC errors, never a 500", async () => {
    const post = (body: string, accept = "application/json") => fetch(`${t.url}/a2a/echo`, { method: "POST", headers: { "content-type": "application/json", accept }, body });
    const broken = await post("{oops");
    expect(broken.status).toBe(400);
    expect(await broken.json()).toMatchObject({ jsonrpc: "2.0", id: null, error: { code: -32700 } });
    const version = await post(JSON.stringify({ jsonrpc: "1.0", id: "1", method: "message/send" }));
    expect(version.status).toBe(400);
    expect(await version.json()).toMatchObject({ error: { code: -32600 } });
    const noParams = await post(JSON.stringify({ jsonrpc: "2.0", id: "1", method: "message/send" }));
    expect(noParams.status).toBe(400);
    expect(await noParams.json()).toMatchObject({ id: "1", error: { code: -32602 } });
    expect(await (await post(JSON.stringify({ jsonrpc: "2.0", id: "1", method: "no/such", params: {} }))).json()).toMatchObject({ error: { code: -32601 } });
    expect((await post(JSON.stringify({ jsonrpc: "2.0", id: "1", method: "message/stream", params: userMessage("x") }))).status).toBe(400);
    // No Accept header admits anything (RFC 9110).
    const noHeader = await fetch(`${t.url}/a2a/echo`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: "2", method: "message/send", params: userMessage("no accept") }) });
    expect(noHeader.status).toBe(200);
    expect(await noHeader.json()).toMatchObject({ id: "2", result: { status: { state: "completed" } } });
    const badContext = await a2a(t.url, "echo", "message/send", userMessage("x", "session-42"));
    expect(badContext.body.error).toMatchObject({ code: -32602 });
    const task = await a2a(t.url, "echo", "tasks/get", { id: crypto.randomUUID() });
    expect(task.body.error).toMatchObject({ code: -32001 });
    const tooLong = await a2a(t.url, "echo", "tasks/get", { id: crypto.randomUUID(), historyLength: 11 });
    expect(tooLong.status).toBe(400);
    const unknown = await a2a(t.url, crypto.randomUUID(), "message/send", userMessage("x"));
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: -32602 });
  });
});

/** A message as the A2A project's client builds one (v1.0 shapes; its v0.3 transport translates them). */
const clientMessage = (text: string, contextId = ""): A2aClientMessage => ({
  messageId: crypto.randomUUID(),
  contextId,
  taskId: "",
  role: Role.ROLE_USER,
  parts: [{ content: { $case: "text", value: text }, filename: "", mediaType: "", metadata: undefined }],
  metadata: undefined,
  extensions: [],
  referenceTaskIds: [],
});
const partText = (part: { content?: { $case: string; value?: unknown } } | undefined) => (part?.content?.$case === "text" ? part.content.value : undefined);

describe("A2A with the A2A project's client (@a2a-js/sdk, v0.3 JSON-RPC)", () => {
  it("reads the card, sends, continues the context, streams, gets the task", async () => {
    const card: unknown = await (await fetch(`${t.url}/.well-known/agent-card.json?assistant_id=echo`)).json();
    expect(isLegacyAgentCard(card)).toBe(true);
    const parsed = parseLegacyAgentCard(card);
    expect(parsed.supportedInterfaces[0]).toMatchObject({ protocolBinding: "JSONRPC", url: (card as { url: string }).url });
    const transport = new LegacyJsonRpcTransport({ endpoint: parsed.supportedInterfaces[0]!.url });
    const send = (text: string, contextId?: string) => transport.sendMessage({ tenant: "", message: clientMessage(text, contextId), configuration: undefined, metadata: undefined });

    const first = await send("hello");
    expect("status" in first && first.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    const task = first as Extract<typeof first, { status?: unknown }>;
    expect(partText(task.artifacts[0]?.parts[0])).toBe("echo: hello");
    const second = (await send("again", task.contextId)) as typeof task;
    expect(second.contextId).toBe(task.contextId);
    expect(partText(second.artifacts[0]?.parts[0])).toBe("echo: again");
    expect(second.history.map((m) => [m.role, partText(m.parts[0])])).toEqual([
      [Role.ROLE_USER, "hello"],
      [Role.ROLE_AGENT, "echo: hello"],
      [Role.ROLE_USER, "again"],
      [Role.ROLE_AGENT, "echo: again"],
    ]);

    const events = [];
    for await (const event of transport.sendMessageStream({ tenant: "", message: clientMessage("streamed", task.contextId), configuration: undefined, metadata: undefined })) events.push(event);
    expect(events[0]?.payload?.$case).toBe("task");
    const last = events.at(-1)?.payload;
    expect(last?.$case).toBe("statusUpdate");
    const update = last?.$case === "statusUpdate" ? last.value : undefined;
    expect(update?.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(partText(update?.status?.message?.parts[0])).toBe("echo: streamed");

    const got = await transport.getTask({ tenant: "", id: task.id, historyLength: undefined });
    expect(got.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    await expect(transport.getTask({ tenant: "", id: crypto.randomUUID(), historyLength: undefined })).rejects.toThrow(/not found/i);
  });
});

describe("disabled and protected", () => {
  it("http.disable_mcp and http.disable_a2a remove the endpoints", async () => {
    const off = await startServer({ configPath: DISABLED });
    try {
      const mcp = await fetch(`${off.url}/mcp`, { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream" }, body: "{}" });
      expect(mcp.status).toBe(404);
      expect((await a2a(off.url, "echo", "message/send", userMessage("x"))).status).toBe(404);
      expect((await fetch(`${off.url}/.well-known/agent-card.json?assistant_id=echo`)).status).toBe(404);
    } finally {
      await off.close();
    }
  });

  it("authenticates, runs as the caller, and hides another user's assistants", async () => {
    const auth = await startServer({ configPath: AUTH });
    try {
      const alice = new Client({ apiUrl: auth.url, defaultHeaders: { authorization: "Bearer token-alice" } });
      const own = await alice.assistants.create({ graphId: "whoami", name: "alice-only" });
      expect((await fetch(`${auth.url}/mcp`, { method: "POST", headers: { "content-type": "application/json", accept: "application/json" }, body: "{}" })).status).toBe(401);
      const asAlice = await mcpClient(auth.url, { authorization: "Bearer token-alice" });
      const asBob = await mcpClient(auth.url, { authorization: "Bearer token-bob" });
      try {
        expect((await asAlice.listTools()).tools.map((tool) => tool.name)).toContain("alice-only");
        expect((await asBob.listTools()).tools.map((tool) => tool.name)).not.toContain("alice-only");
        const said = (await asAlice.callTool({ name: "alice-only", arguments: { messages: [{ role: "user", content: "hi" }] } })) as CallToolResult;
        expect(JSON.parse(lastMessage(JSON.parse(textOf(said))))).toMatchObject({ identity: "alice" });
        expect((await rpcError(asBob.callTool({ name: "alice-only", arguments: {} }))).message).toMatch(/Unknown tool/);
      } finally {
        await asAlice.close();
        await asBob.close();
      }
      const bob = { authorization: "Bearer token-bob" };
      expect((await a2a(auth.url, own.assistant_id, "message/send", userMessage("hi"), bob)).status).toBe(404);
      expect((await fetch(`${auth.url}/.well-known/agent-card.json?assistant_id=${own.assistant_id}`, { headers: bob })).status).toBe(404);
      const sent = await a2a(auth.url, own.assistant_id, "message/send", userMessage("hi"), { authorization: "Bearer token-alice" });
      const task = sent.body.result as Task;
      expect(JSON.parse(task.artifacts![0]!.parts[0]!.text)).toMatchObject({ identity: "alice", thread_id: task.contextId });
      // Bob, at an assistant of his own on the same graph (so the assistant lookup passes): alice's task and context are not his.
      const bobs = await new Client({ apiUrl: auth.url, defaultHeaders: bob }).assistants.create({ graphId: "whoami", name: "bob-own" });
      for (const method of ["tasks/get", "tasks/cancel"]) {
        const refused = await a2a(auth.url, bobs.assistant_id, method, { id: task.id, contextId: task.contextId }, bob);
        expect(refused.status).toBe(200);
        expect(refused.body.error).toMatchObject({ code: -32001 });
      }
      const intoAlices = await a2a(auth.url, bobs.assistant_id, "message/send", userMessage("let me in", task.contextId), bob);
      // (200: the endpoint exists; what the params name is not found)
      expect(intoAlices.status).toBe(200);
      expect(intoAlices.body.error).toEqual({ code: -32602, message: expect.stringMatching(/not found/) as string });
      expect(await alice.runs.list(task.contextId)).toHaveLength(1);
      expect((await alice.runs.get(task.contextId, task.id)).status).toBe("success");
    } finally {
      await auth.close();
    }
  });
});
