import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemAssistantId } from "../../src/core/assistants.ts";
import { human, startServer, type TestServer } from "../helpers/server.ts";

let t: TestServer;
beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => {
  await t.close();
});

describe("meta", () => {
  it("answers /ok and /info", async () => {
    expect(await (await fetch(`${t.url}/ok`)).json()).toEqual({ ok: true });
    const info = (await (await fetch(`${t.url}/info`)).json()) as { version: string };
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
  });
  it("mounts the project's http.app in front of the API", async () => {
    expect(await (await fetch(`${t.url}/custom/hello`)).json()).toEqual({ hello: "from the project's app" });
  });
});

describe("assistants", () => {
  it("has a system assistant per graph with the official UUIDv5 id", async () => {
    const a = await t.client.assistants.get("echo");
    expect(a.assistant_id).toBe(systemAssistantId("echo"));
    expect(a.metadata).toEqual({ created_by: "system" });
    // The id the official server derives for graph "chat", as observed on the published dev server.
    expect(systemAssistantId("chat")).toBe("eb6db400-e3c8-5d06-a834-015cb89efe69");
  });
  it("creates, patches into versions, sets latest, searches and counts", async () => {
    const a = await t.client.assistants.create({ graphId: "echo", name: "mine", metadata: { team: "a" }, config: { configurable: { x: 1 } } });
    expect(a.version).toBe(1);
    const again = await t.client.assistants.create({ graphId: "echo", assistantId: a.assistant_id, ifExists: "do_nothing" });
    expect(again.assistant_id).toBe(a.assistant_id);
    await expect(t.client.assistants.create({ graphId: "echo", assistantId: a.assistant_id })).rejects.toThrow(/409/);
    const b = await t.client.assistants.update(a.assistant_id, { name: "renamed", metadata: { v: 2 } });
    expect(b.version).toBe(2);
    expect(b.metadata).toEqual({ team: "a", v: 2 });
    const versions = await t.client.assistants.getVersions(a.assistant_id);
    expect(versions.map((v) => v.version)).toEqual([2, 1]);
    const back = await t.client.assistants.setLatest(a.assistant_id, 1);
    expect(back.name).toBe("mine");
    const found = await t.client.assistants.search({ metadata: { team: "a" } });
    expect(found.map((f) => f.assistant_id)).toContain(a.assistant_id);
    expect(await t.client.assistants.count({ graphId: "echo" })).toBeGreaterThanOrEqual(2);
    const graph = await t.client.assistants.getGraph(a.assistant_id, { xray: true });
    expect(JSON.stringify(graph)).toContain("echo");
    // Schemas of annotated graphs (a TypeScript compile, seconds): test/integration/dropin-schemas.test.ts.
    await t.client.assistants.delete(a.assistant_id);
    await expect(t.client.assistants.get(a.assistant_id)).rejects.toThrow(/404/);
  });
  it("publishes typed JSON schemas for a graph whose state is a zod schema", async () => {
    const schemas = await t.client.assistants.getSchemas("typed");
    const state = schemas.state_schema as { properties: Record<string, { type?: string }>; required?: string[] };
    expect(state.properties.question?.type).toBe("string");
    // As on the dev server, the state schema is the update schema (no required keys); the output schema has them.
    expect(state.required).toBeUndefined();
    expect((schemas.output_schema as { required?: string[] }).required).toContain("question");
    const out = (await t.client.runs.wait(null, "typed", { input: { question: "why" } })) as { answer: string };
    expect(out.answer).toBe("you asked: why");
  });
  it("deletes an assistant with its threads when delete_threads is set", async () => {
    const a = await t.client.assistants.create({ graphId: "echo" });
    const thread = await t.client.threads.create();
    await t.client.runs.wait(thread.thread_id, a.assistant_id, { input: human("x") });
    const keep = await t.client.threads.create();
    const response = await fetch(`${t.url}/assistants/${a.assistant_id}?delete_threads=true`, { method: "DELETE" });
    expect(response.status).toBe(200);
    await expect(t.client.threads.get(thread.thread_id)).rejects.toThrow(/404/);
    expect((await t.client.threads.get(keep.thread_id)).thread_id).toBe(keep.thread_id);
  });
  it("refuses an unknown graph with 404", async () => {
    await expect(t.client.assistants.create({ graphId: "nope" })).rejects.toThrow(/404/);
  });
});

describe("threads and runs", () => {
  it("waits for a run and returns that run's own values", async () => {
    const thread = await t.client.threads.create({ metadata: { user: "u1" } });
    const out = (await t.client.runs.wait(thread.thread_id, "echo", { input: human("hi") })) as { messages: { content: string }[] };
    expect(out.messages.map((m) => m.content)).toEqual(["hi", "echo: hi"]);
    const after = await t.client.threads.get(thread.thread_id);
    expect(after.status).toBe("idle");
    expect(after.metadata).toMatchObject({ user: "u1", graph_id: "echo" });
    const state = await t.client.threads.getState(thread.thread_id);
    expect(state.next).toEqual([]);
    expect((state.values as { messages: unknown[] }).messages).toHaveLength(2);
    const history = await t.client.threads.getHistory(thread.thread_id, { limit: 10 });
    expect(history.length).toBeGreaterThanOrEqual(3);
    const found = await t.client.threads.search({ metadata: { user: "u1" } });
    expect(found.map((f) => f.thread_id)).toContain(thread.thread_id);
    expect(await t.client.threads.count({ metadata: { user: "u1" } })).toBe(1);
    const copy = await t.client.threads.copy(thread.thread_id);
    expect((await t.client.threads.getState(copy.thread_id)).values).toEqual(state.values);
  });

  it("streams every requested mode with ids and a first metadata event", async () => {
    const thread = await t.client.threads.create();
    let runId: string | undefined;
    const parts = [];
    for await (const part of t.client.runs.stream(thread.thread_id, "echo", {
      input: human("stream me"),
      streamMode: ["values", "updates", "messages-tuple", "debug", "tasks", "checkpoints", "custom"],
      onRunCreated: (meta) => (runId = meta.run_id),
    })) {
      parts.push(part);
    }
    expect(parts[0]!.event).toBe("metadata");
    expect((parts[0]!.data as { run_id: string }).run_id).toBe(runId);
    const events = new Set(parts.map((p) => p.event));
    for (const e of ["values", "updates", "debug", "tasks", "checkpoints"]) expect(events).toContain(e);
    // Ids are "<ms>-<n>", strictly increasing.
    const keys = parts.map((p) => (p as { id?: string }).id!.split("-").map(Number) as [number, number]);
    for (let i = 1; i < keys.length; i++) {
      const [a, b] = [keys[i - 1]!, keys[i]!];
      expect(b[0] > a[0] || (b[0] === a[0] && b[1] > a[1])).toBe(true);
    }
    const run = await t.client.runs.get(thread.thread_id, runId!);
    expect(run.status).toBe("success");
  });

  it("streams subgraph events as mode|namespace only when stream_subgraphs is set", async () => {
    const thread = await t.client.threads.create();
    const withSub: string[] = [];
    for await (const part of t.client.runs.stream(thread.thread_id, "nested", { input: human("x"), streamMode: ["updates"], streamSubgraphs: true })) {
      withSub.push(part.event);
    }
    expect(withSub.filter((e) => /^updates\|child:[0-9a-f-]+$/.test(e)).length).toBeGreaterThanOrEqual(1);
    expect(withSub).toContain("updates");
    const without: string[] = [];
    for await (const part of t.client.runs.stream(thread.thread_id, "nested", { input: human("y"), streamMode: ["updates"] })) without.push(part.event);
    expect(without.every((e) => !e.includes("|"))).toBe(true);
    // Listing subgraphs with their schemas (a TypeScript compile, seconds): test/integration/dropin-schemas.test.ts.
  });

  it("streams custom chunks a node writes", async () => {
    const thread = await t.client.threads.create();
    const custom: unknown[] = [];
    for await (const part of t.client.runs.stream(thread.thread_id, "custom", { input: human("x"), streamMode: ["custom"] })) {
      if (part.event === "custom") custom.push(part.data);
    }
    expect(custom).toEqual([{ progress: 50 }, { progress: 100 }]);
  });

  it("streams model tokens as messages-tuple, the legacy messages mode and events", async () => {
    const thread = await t.client.threads.create();
    const parts: { event: string; data: unknown }[] = [];
    for await (const part of t.client.runs.stream(thread.thread_id, "tokens", {
      input: human("x"),
      streamMode: ["messages-tuple", "messages", "events"],
    })) {
      parts.push(part);
    }
    const of = (name: string) => parts.filter((p) => p.event === name).map((p) => p.data);
    // messages-tuple: one [chunk, metadata] per token, the metadata naming the node.
    const tuples = of("messages") as [{ content: string; type: string }, { langgraph_node: string }][];
    expect(tuples.map(([chunk]) => chunk.content).join("")).toBe("hello world");
    expect(tuples[0]![1].langgraph_node).toBe("model");
    // Legacy mode: metadata once per message, partials accumulating to the full text.
    expect(of("messages/metadata")).toHaveLength(1);
    const partials = of("messages/partial") as [{ content: string }][];
    expect(partials.at(-1)![0].content).toBe("hello world");
    expect(partials.map(([m]) => m.content.length)).toEqual([...partials.map(([m]) => m.content.length)].sort((a, b) => a - b));
    // events mode: LangChain's callback events, including the model's stream.
    const kinds = new Set((of("events") as { event: string }[]).map((e) => e.event));
    expect(kinds).toContain("on_chat_model_stream");
  });

  it("interrupts for a human and resumes with a command", async () => {
    const thread = await t.client.threads.create();
    const first = (await t.client.runs.wait(thread.thread_id, "ask", { input: human("go") })) as Record<string, unknown>;
    expect(first.__interrupt__).toBeDefined();
    const interrupted = await t.client.threads.get(thread.thread_id);
    expect(interrupted.status).toBe("interrupted");
    expect(Object.values(interrupted.interrupts ?? {}).flat()).toHaveLength(1);
    const state = await t.client.threads.getState(thread.thread_id);
    expect(state.next).toEqual(["ask"]);
    const done = (await t.client.runs.wait(thread.thread_id, "ask", { command: { resume: "yes" } })) as { answer: string };
    expect(done.answer).toBe("yes");
    expect((await t.client.threads.get(thread.thread_id)).status).toBe("idle");
  });

  it("runs again from an earlier checkpoint", async () => {
    const thread = await t.client.threads.create();
    await t.client.runs.wait(thread.thread_id, "echo", { input: human("one") });
    const history = await t.client.threads.getHistory(thread.thread_id);
    const afterFirst = history[0]!.checkpoint;
    await t.client.runs.wait(thread.thread_id, "echo", { input: human("two") });
    const forked = (await t.client.runs.wait(thread.thread_id, "echo", { input: human("three"), checkpoint: afterFirst })) as {
      messages: { content: string }[];
    };
    expect(forked.messages.map((m) => m.content)).toEqual(["one", "echo: one", "three", "echo: three"]);
  });

  it("updates state as a node and reads state at a checkpoint", async () => {
    const thread = await t.client.threads.create({ graphId: "echo" });
    // The SDK types this answer loosely; the wire carries {checkpoint: {...}} as the dev server does.
    const answer = (await t.client.threads.updateState(thread.thread_id, { values: human("typed in"), asNode: "echo" })) as unknown as {
      checkpoint: { checkpoint_id: string };
    };
    const state = await t.client.threads.getState(thread.thread_id, answer.checkpoint.checkpoint_id);
    expect((state.values as { messages: { content: string }[] }).messages[0]!.content).toBe("typed in");
  });

  it("reports a failing graph as an error run and an error thread", async () => {
    const thread = await t.client.threads.create();
    await expect(t.client.runs.wait(thread.thread_id, "fail", { input: human("x") })).rejects.toThrow(/boom/);
    const [run] = await t.client.runs.list(thread.thread_id);
    expect(run!.status).toBe("error");
    expect((await t.client.threads.get(thread.thread_id)).status).toBe("error");
  });

  it("calls a factory graph per run with the run's config", async () => {
    const out = (await t.client.runs.wait(null, "factory", { input: human("x"), config: { configurable: { greeting: "ada" } } })) as {
      messages: { content: string }[];
    };
    expect(out.messages.at(-1)!.content).toBe("factory for ada");
  });

  it("prunes threads: keep_latest drops old checkpoints, delete removes the thread", async () => {
    const a = await t.client.threads.create();
    const b = await t.client.threads.create();
    for (const thread of [a, b]) {
      await t.client.runs.wait(thread.thread_id, "echo", { input: human("one") });
      await t.client.runs.wait(thread.thread_id, "echo", { input: human("two") });
    }
    const before = await t.client.threads.getState(a.thread_id);
    expect((await t.client.threads.getHistory(a.thread_id, { limit: 100 })).length).toBeGreaterThan(1);
    expect(await t.client.threads.prune([a.thread_id], { strategy: "keep_latest" })).toEqual({ pruned_count: 1 });
    expect(await t.client.threads.getHistory(a.thread_id, { limit: 100 })).toHaveLength(1);
    expect((await t.client.threads.getState(a.thread_id)).values).toEqual(before.values);
    expect(await t.client.threads.prune([b.thread_id, crypto.randomUUID()])).toEqual({ pruned_count: 1 });
    await expect(t.client.threads.get(b.thread_id)).rejects.toThrow(/404/);
  });

  it("creates background runs, joins them and lists them", async () => {
    const thread = await t.client.threads.create();
    const run = await t.client.runs.create(thread.thread_id, "echo", { input: human("bg") });
    const joined = (await t.client.runs.join(thread.thread_id, run.run_id)) as { messages: unknown[] };
    expect(joined.messages).toHaveLength(2);
    const list = await t.client.runs.list(thread.thread_id);
    expect(list.map((r) => r.run_id)).toEqual([run.run_id]);
    await t.client.runs.delete(thread.thread_id, run.run_id);
    await expect(t.client.runs.get(thread.thread_id, run.run_id)).rejects.toThrow(/404/);
  });

  it("creates the thread on first run with if_not_exists=create, and 404s without it", async () => {
    const id = crypto.randomUUID();
    await expect(t.client.runs.wait(id, "echo", { input: human("x") })).rejects.toThrow(/404/);
    await t.client.runs.wait(id, "echo", { input: human("x"), ifNotExists: "create" });
    expect((await t.client.threads.get(id)).status).toBe("idle");
  });

  it("runs stateless runs and batches, and deletes their threads", async () => {
    const out = (await t.client.runs.wait(null, "echo", { input: human("stateless") })) as { messages: unknown[] };
    expect(out.messages).toHaveLength(2);
    const batch = await t.client.runs.createBatch([
      { assistantId: "echo", input: human("a") },
      { assistantId: "echo", input: human("b") },
    ]);
    expect(batch).toHaveLength(2);
  });

  it("delays runs with after_seconds", async () => {
    const thread = await t.client.threads.create();
    const run = await t.client.runs.create(thread.thread_id, "echo", { input: human("later"), afterSeconds: 1 });
    await t.client.runs.join(thread.thread_id, run.run_id);
    expect((await t.client.runs.get(thread.thread_id, run.run_id)).status).toBe("success");
    // Its first checkpoint was written no sooner than a second after the run was created (a lower bound: load only adds).
    const history = await t.client.threads.getHistory(thread.thread_id);
    const first = Math.min(...history.map((state) => Date.parse(state.created_at!)));
    expect(first - Date.parse(run.created_at)).toBeGreaterThanOrEqual(1_000);
  });

  it("posts a webhook to the project's app on completion", async () => {
    const received = ((globalThis as Record<string, unknown>).__batonWebhooks ??= []) as { run_id: string }[];
    const thread = await t.client.threads.create();
    const run = await t.client.runs.create(thread.thread_id, "echo", { input: human("hook"), webhook: "/hooks/run-done" });
    await t.client.runs.join(thread.thread_id, run.run_id);
    await expect.poll(() => received.map((r) => r.run_id)).toContain(run.run_id);
  });
});

describe("store", () => {
  it("puts, gets, searches, lists namespaces and deletes", async () => {
    await t.client.store.putItem(["users", "u1"], "prefs", { theme: "dark" });
    await t.client.store.putItem(["users", "u2"], "prefs", { theme: "light" });
    const item = await t.client.store.getItem(["users", "u1"], "prefs");
    expect(item?.value).toEqual({ theme: "dark" });
    const found = await t.client.store.searchItems(["users"], { filter: { theme: "light" } });
    expect(found.items.map((i) => i.namespace)).toEqual([["users", "u2"]]);
    const ns = await t.client.store.listNamespaces({ prefix: ["users"] });
    expect(ns.namespaces).toEqual([["users", "u1"], ["users", "u2"]]);
    await t.client.store.deleteItem(["users", "u1"], "prefs");
    expect(await t.client.store.getItem(["users", "u1"], "prefs")).toBeNull();
  });
});
