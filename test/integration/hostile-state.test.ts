/**
 * Hostile state and run requests (issue 11, findings 3, 9, 10 and 13): a
 * request naming a checkpoint the thread does not have, a state update
 * LangGraph cannot apply, a batch or a thread creation with one bad part,
 * is refused with a 4xx that says what to fix, and changes nothing: each
 * test reads the thread back (record, state, history, runs) and compares.
 */
import type { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gate } from "../fixtures/graphs/graphs.ts";
import { human, startServer, type TestServer } from "../helpers/server.ts";

let t: TestServer;
let client: Client;
beforeAll(async () => {
  t = await startServer();
  client = t.client;
});
afterAll(async () => {
  await t.close();
});

type Json = Record<string, unknown>;
type Msg = { content: string };

/** A request with any body, as a hostile client sends it; the answer's status and JSON. */
async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const response = await fetch(`${t.url}${path}`, {
    method,
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: (text === "" ? {} : JSON.parse(text)) as Json };
}

/** Everything a client can read of a thread: a refused request must leave all of it as it was. */
async function readBack(threadId: string) {
  const [thread, state, history, runs] = await Promise.all([
    call("GET", `/threads/${threadId}`),
    call("GET", `/threads/${threadId}/state`),
    call("POST", `/threads/${threadId}/history`, { limit: 100 }),
    call("GET", `/threads/${threadId}/runs?limit=100`),
  ]);
  return { thread: thread.body, state: state.body, history: history.body, runs: runs.body };
}

/** A thread with a conversation of two messages (one echo run). */
async function conversation(text = "keep me") {
  const thread = await client.threads.create();
  await client.runs.wait(thread.thread_id, "echo", { input: human(text) });
  const state = (await client.threads.getState(thread.thread_id)).values as { messages: Msg[] };
  expect(state.messages.map((m) => m.content)).toEqual([text, `echo: ${text}`]);
  return thread.thread_id;
}

/** A checkpoint id of the right form that no thread has. */
const UNKNOWN = "1f0c0000-0000-6000-8000-000000000000";

describe("an unknown checkpoint is refused, never read as an empty state (finding 3)", () => {
  it.each([
    ["checkpoint_id", { checkpoint_id: UNKNOWN }],
    ["checkpoint.checkpoint_id", { checkpoint: { checkpoint_id: UNKNOWN } }],
    ["config.configurable.checkpoint_id", { config: { configurable: { checkpoint_id: UNKNOWN } } }],
    ["checkpoint.checkpoint_ns", { checkpoint: { checkpoint_ns: "nowhere:1" } }],
  ])("a run naming it in %s answers 404, creates no run and keeps the conversation", async (_where, naming) => {
    const threadId = await conversation();
    const before = await readBack(threadId);
    for (const endpoint of ["runs", "runs/wait", "runs/stream"]) {
      const r = await call("POST", `/threads/${threadId}/${endpoint}`, { assistant_id: "echo", input: human("replace?"), ...naming });
      expect(r.status, endpoint).toBe(404);
      expect(r.body.detail).toMatch(/not found on thread/);
    }
    expect(await readBack(threadId)).toEqual(before);
  });

  it("a run without a thread naming a checkpoint answers 404 and creates no thread", async () => {
    const count = await client.threads.count();
    for (const endpoint of ["/runs", "/runs/wait", "/runs/stream"]) {
      const r = await call("POST", endpoint, { assistant_id: "echo", input: human("x"), checkpoint_id: UNKNOWN, on_completion: "keep" });
      expect(r.status, endpoint).toBe(404);
      expect(r.body.detail).toMatch(/new thread, which has no checkpoints/);
    }
    expect(await client.threads.count()).toBe(count);
  });

  it("a run whose checkpoint disappears before it starts ends in error, not from an empty state", async () => {
    const threadId = await conversation("before the gate");
    const before = (await client.threads.getState(threadId)).values;
    // A gated run writes its input checkpoint, then blocks; a second run is queued to start from that checkpoint.
    const { run: first, gate: blocked } = await startGatedRunOn(threadId);
    const ownCheckpoint = async () => (await client.threads.getHistory(threadId, { limit: 100 })).find((s) => s.metadata?.run_id === first.run_id);
    await expect.poll(ownCheckpoint, { timeout: 15_000 }).toBeDefined();
    const written = await ownCheckpoint();
    const second = await client.runs.create(threadId, "gated", {
      input: human("from the gated run's checkpoint"),
      checkpointId: written!.checkpoint.checkpoint_id!,
      multitaskStrategy: "enqueue",
    });
    // Rolling the first run back erases the checkpoints it wrote, the one the second run names among them.
    await client.runs.cancel(threadId, first.run_id, true, "rollback");
    blocked.open();
    const output = (await client.runs.join(threadId, second.run_id)) as { __error__?: { message: string } };
    expect(output.__error__?.message).toMatch(/not found on thread/);
    expect((await client.runs.get(threadId, second.run_id)).status).toBe("error");
    expect((await client.threads.getState(threadId)).values).toEqual(before);
    expect((await client.threads.get(threadId)).values).toEqual(before);
  });

  it("state and history at an unknown checkpoint or namespace answer 404", async () => {
    const threadId = await conversation();
    const before = await readBack(threadId);
    const refused = [
      await call("GET", `/threads/${threadId}/state/${UNKNOWN}`),
      await call("GET", `/threads/${threadId}/state/not-a-checkpoint`),
      await call("POST", `/threads/${threadId}/state/checkpoint`, { checkpoint: { checkpoint_id: UNKNOWN } }),
      await call("POST", `/threads/${threadId}/state/checkpoint`, { checkpoint: { checkpoint_ns: "nowhere:1" } }),
      await call("GET", `/threads/${threadId}/history?before=${UNKNOWN}`),
      await call("POST", `/threads/${threadId}/history`, { before: UNKNOWN }),
      await call("POST", `/threads/${threadId}/history`, { checkpoint: { checkpoint_id: UNKNOWN } }),
      await call("POST", `/threads/${threadId}/history`, { checkpoint: { checkpoint_ns: "nowhere:1" } }),
    ];
    expect(refused.map((r) => r.status)).toEqual(refused.map(() => 404));
    for (const r of refused) expect(r.body.detail).toMatch(/not found on thread/);
    // A checkpoint the thread has still answers.
    const known = (before.state.checkpoint as Json).checkpoint_id as string;
    expect((await call("GET", `/threads/${threadId}/state/${known}`)).body.values).toEqual(before.state.values);
    expect((await call("POST", `/threads/${threadId}/history`, { before: known })).status).toBe(200);
    expect(await readBack(threadId)).toEqual(before);
  });

  it.each([
    ["checkpoint_id", { checkpoint_id: UNKNOWN }],
    ["checkpoint.checkpoint_id", { checkpoint: { checkpoint_id: UNKNOWN } }],
    ["checkpoint.checkpoint_ns", { checkpoint: { checkpoint_ns: "nowhere:1" } }],
  ])("a state update naming it in %s answers 404 and writes nothing", async (_where, naming) => {
    const threadId = await conversation();
    const before = await readBack(threadId);
    const r = await call("POST", `/threads/${threadId}/state`, { values: { messages: [] }, ...naming });
    expect(r.status).toBe(404);
    expect(r.body.detail).toMatch(/not found on thread/);
    expect(await readBack(threadId)).toEqual(before);
  });
});

/** Starts a gated run on an existing thread and resolves once its node is blocked on its gate. */
async function startGatedRunOn(threadId: string) {
  const name = `g-${crypto.randomUUID()}`;
  const g = gate(name);
  const run = await client.runs.create(threadId, "gated", { input: human(`gate:${name}`) });
  await expect.poll(() => g.entered).toBe(1);
  return { run, gate: g };
}

describe("state updates LangGraph cannot apply are 422, not 500 (finding 10)", () => {
  it.each([
    ["a number", { values: 5 }, /values must be an object.*got a number/],
    ["a string", { values: "hello" }, /values must be an object.*got a string/],
    ["an array", { values: [1, 2] }, /values must be an object.*got an array/],
    ["an array of objects", { values: [{ messages: [] }] }, /values must be an object.*got an array/],
    ["an unknown as_node", { values: { messages: [] }, as_node: "nowhere" }, /as_node 'nowhere' is not a node of graph 'echo'.*echo/],
    ["__end__ with values", { values: { messages: [] }, as_node: "__end__" }, /'__end__'.*values null/],
    ["a message object it cannot read", { values: { messages: [{ foo: 1 }] } }, /Unable to coerce message/],
    ["a number as a message", { values: { messages: [42] } }, /Unable to coerce message/],
    ["null for the messages", { values: { messages: null } }, /could not apply these values \(TypeError/],
  ])("values %s: 422 naming the problem, state unchanged", async (_what, update, detail) => {
    const threadId = await conversation();
    const before = await readBack(threadId);
    const r = await call("POST", `/threads/${threadId}/state`, update);
    expect(r.status).toBe(422);
    expect(r.body.detail).toMatch(detail);
    expect(await readBack(threadId)).toEqual(before);
    // The thread still takes a valid update afterwards, and only that one.
    await client.threads.updateState(threadId, { values: { messages: [{ role: "user", content: "valid" }] }, asNode: "echo" });
    const after = (await client.threads.getState(threadId)).values as { messages: Msg[] };
    expect(after.messages.map((m) => m.content)).toEqual(["keep me", "echo: keep me", "valid"]);
    // One checkpoint more: the dry run before each update writes nowhere.
    expect(await client.threads.getHistory(threadId, { limit: 100 })).toHaveLength((before.history as unknown as unknown[]).length + 1);
  });

  it("as_node __end__ with values null is what LangGraph allows: it ends the pending tasks", async () => {
    const thread = await client.threads.create();
    await client.runs.wait(thread.thread_id, "two_step", { input: human("stop"), interruptBefore: ["second"] });
    expect((await client.threads.getState(thread.thread_id)).next).toEqual(["second"]);
    const r = await call("POST", `/threads/${thread.thread_id}/state`, { values: null, as_node: "__end__" });
    expect(r.status).toBe(200);
    expect((await client.threads.getState(thread.thread_id)).next).toEqual([]);
  });
});

describe("refused requests have no side effects (finding 9)", () => {
  it("a batch with one invalid entry creates none of its runs, and names the entry", async () => {
    const count = await client.threads.count();
    const valid = { assistant_id: "echo", input: human("batched"), on_completion: "keep" };
    const cases: [unknown[], number, RegExp][] = [
      [[valid, { assistant_id: "no-such-graph" }], 404, /^Run 1: .*no-such-graph/],
      [[valid, valid, { assistant_id: "echo", stream_mode: "sideways" }], 422, /^Run 2: .*stream_mode/],
      [[valid, { assistant_id: "echo", checkpoint_id: UNKNOWN }], 404, /^Run 1: Checkpoint/],
      [[{ assistant_id: "echo", feedback_keys: ["x"] }, valid], 422, /^Run 0: .*feedback_keys/],
    ];
    for (const [batch, status, detail] of cases) {
      const r = await call("POST", "/runs/batch", batch);
      expect(r.status).toBe(status);
      expect(r.body.detail).toMatch(detail);
    }
    // Each run of a batch (kept on completion) has a thread of its own: none was made.
    expect(await client.threads.count()).toBe(count);
    // A valid batch still creates all of its runs.
    const ok = await call("POST", "/runs/batch", [valid, valid]);
    expect(ok.status).toBe(200);
    expect(ok.body).toHaveLength(2);
    expect(await client.threads.count()).toBe(count + 2);
  });

  it("a batch refused partway by a full queue starts none of its runs: they are held until all exist", async () => {
    // Two pending runs fill the queue, so the third entry is refused at creation, after the first two were inserted.
    const small = await startServer({ maxPendingRuns: 2, workers: 4 });
    try {
      const names = [0, 1, 2].map((i) => `batch-held-${i}-${crypto.randomUUID()}`);
      const response = await fetch(`${small.url}/runs/batch`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(names.map((name) => ({ assistant_id: "gated", input: human(`gate:${name}`) }))),
      });
      expect(response.status).toBe(429);
      expect(((await response.json()) as Json).detail).toMatch(/^Run 2: /);
      // The first two were rolled back before any worker could start them: with
      // free workers, an unheld run would have been claimed (and the queue had room).
      expect(names.map((name) => gate(name).entered)).toEqual([0, 0, 0]);
      expect(await small.client.runs.wait(null, "echo", { input: human("after") })).toMatchObject({ messages: [{ content: "after" }, { content: "echo: after" }] });
      expect(names.map((name) => gate(name).entered)).toEqual([0, 0, 0]);
      // A batch that fits is released and runs.
      const ok = await fetch(`${small.url}/runs/batch`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify([
          { assistant_id: "echo", input: human("one"), on_completion: "keep" },
          { assistant_id: "echo", input: human("two"), on_completion: "keep" },
        ]),
      });
      expect(ok.status).toBe(200);
      const runs = (await ok.json()) as { run_id: string; thread_id: string }[];
      for (const [i, run] of runs.entries()) {
        expect(await small.client.runs.join(run.thread_id, run.run_id)).toMatchObject({ messages: [{}, { content: `echo: ${["one", "two"][i]}` }] });
      }
    } finally {
      await small.close();
    }
  });

  it("a thread whose second superstep names an unknown node is not created", async () => {
    const threadId = crypto.randomUUID();
    const supersteps = [
      { updates: [{ values: { messages: [{ role: "user", content: "first" }] }, as_node: "echo" }] },
      { updates: [{ values: { messages: [{ role: "ai", content: "second" }] }, as_node: "nowhere" }] },
    ];
    const r = await call("POST", "/threads", { thread_id: threadId, graph_id: "echo", supersteps });
    expect(r.status).toBe(422);
    expect(r.body.detail).toMatch(/supersteps\.1.*'nowhere' is not a node of graph 'echo'/);
    expect((await call("GET", `/threads/${threadId}`)).status).toBe(404);
    expect(await client.threads.search({ ids: [threadId] })).toEqual([]);
    // The id is free, and holds no checkpoint the refused request wrote.
    await client.threads.create({ threadId, graphId: "echo" });
    expect((await client.threads.getState(threadId)).values).toEqual({});
    expect(await client.threads.getHistory(threadId)).toEqual([]);
  });

  it.each([
    ["an unreadable message in the second superstep", { graph_id: "echo" }, [{ messages: [{ role: "user", content: "ok" }] }, { messages: [42] }], /supersteps\.1: .*coerce message/],
    ["values that are not an object", { graph_id: "echo" }, [{ messages: [] }, 7], /supersteps\.1\.updates\.0: values must be an object/],
    ["no graph to apply them to", {}, [{ messages: [] }], /supersteps need the thread's graph/],
  ])("supersteps with %s: 422 and no thread", async (_what, graph, values, detail) => {
    const count = await client.threads.count();
    const supersteps = values.map((v) => ({ updates: [{ values: v, as_node: "echo" }] }));
    const r = await call("POST", "/threads", { ...graph, supersteps });
    expect(r.status).toBe(422);
    expect(r.body.detail).toMatch(detail);
    expect(await client.threads.count()).toBe(count);
  });

  it("valid supersteps create the thread with their state", async () => {
    const r = await call("POST", "/threads", {
      graph_id: "echo",
      supersteps: [
        { updates: [{ values: { messages: [{ role: "user", content: "one" }] }, as_node: "echo" }] },
        { updates: [{ values: { messages: [{ role: "ai", content: "two" }] }, as_node: "echo" }] },
      ],
    });
    expect(r.status).toBe(200);
    const threadId = r.body.thread_id as string;
    const state = (await client.threads.getState(threadId)).values as { messages: Msg[] };
    expect(state.messages.map((m) => m.content)).toEqual(["one", "two"]);
    expect((r.body.values as { messages: Msg[] }).messages.map((m) => m.content)).toEqual(["one", "two"]);
  });

  it("a superstep's command is applied as LangGraph applies a node's Command", async () => {
    const r = await call("POST", "/threads", {
      graph_id: "echo",
      supersteps: [{ updates: [{ values: null, command: { update: { messages: [{ role: "user", content: "by command" }] } }, as_node: "echo" }] }],
    });
    expect(r.status).toBe(200);
    const state = (await client.threads.getState(r.body.thread_id as string)).values as { messages: Msg[] };
    expect(state.messages.map((m) => m.content)).toEqual(["by command"]);
  });

  it("a create with if_exists do_nothing does not apply its supersteps to the existing thread again", async () => {
    const threadId = await conversation();
    const before = await readBack(threadId);
    const r = await call("POST", "/threads", {
      thread_id: threadId,
      if_exists: "do_nothing",
      graph_id: "echo",
      supersteps: [{ updates: [{ values: { messages: [{ role: "user", content: "again" }] }, as_node: "echo" }] }],
    });
    expect(r.status).toBe(200);
    expect(await readBack(threadId)).toEqual(before);
  });

  it("concurrent creates of one new thread with supersteps and if_exists do_nothing apply them once", async () => {
    const threadId = crypto.randomUUID();
    const body = {
      thread_id: threadId,
      if_exists: "do_nothing",
      graph_id: "echo",
      supersteps: [{ updates: [{ values: { messages: [{ role: "user", content: "once" }] }, as_node: "echo" }] }],
    };
    const answers = await Promise.all(Array.from({ length: 10 }, () => call("POST", "/threads", body)));
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    const history = (await call("POST", `/threads/${threadId}/history`, {})).body as unknown as { values: { messages: { content: string }[] } }[];
    expect(history[0]!.values.messages.map((m) => m.content)).toEqual(["once"]);
    expect(history).toHaveLength(1);
  });
});

describe("thread records in the contract's shape (finding 13)", () => {
  it("a thread with no state yet has no values, rather than values null", async () => {
    const created = await call("POST", "/threads", {});
    expect(created.body).not.toHaveProperty("values");
    const threadId = created.body.thread_id as string;
    expect((await call("GET", `/threads/${threadId}`)).body).not.toHaveProperty("values");
    const found = await call("POST", "/threads/search", { ids: [threadId] });
    expect(found.body).toEqual([expect.not.objectContaining({ values: null })]);
    // Its state is the empty state the dev server answers.
    expect((await call("GET", `/threads/${threadId}/state`)).body).toMatchObject({ values: {}, next: [], tasks: [], checkpoint: null });
    // Once it has a state, values is that state.
    await client.runs.wait(threadId, "echo", { input: human("now") });
    expect(((await call("GET", `/threads/${threadId}`)).body.values as { messages: Msg[] }).messages).toHaveLength(2);
  });
});
