/**
 * Runs, thread state and streams answer as the official server does (issue
 * 10, items 10 to 18), through the official SDK against a real server. The
 * expected shapes and event sequences were taken from the published dev
 * server (`langgraphjs dev`) serving the same fixture project.
 */
import { join } from "node:path";
import type { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.ts";

const PROJECT = join(import.meta.dirname, "../fixtures/state/langgraph.json");

let t: TestServer;
let client: Client;
beforeAll(async () => {
  t = await startServer({ configPath: PROJECT });
  client = t.client;
});
afterAll(async () => {
  await t.close();
});

type Json = Record<string, unknown>;
type Task = { id: string; checkpoint: Json | null; state: Json | null; interrupts: unknown[] };
type State = { values: Json; next: string[]; tasks: Task[]; checkpoint: Json | null; metadata: Json };
/** What a state update answers (the SDK's type says a config; the servers answer this). */
type Updated = { checkpoint: Json };

const STATE_KEYS = ["checkpoint", "created_at", "metadata", "next", "parent_checkpoint", "tasks", "values"];
const TASK_KEYS = ["checkpoint", "error", "id", "interrupts", "name", "path", "result", "state"];
const REF_KEYS = ["checkpoint_id", "checkpoint_map", "checkpoint_ns", "thread_id"];
const keys = (value: unknown) => Object.keys(value as object).sort();

/** Every key set of a thread state, its tasks and nested subgraph states. */
function expectOfficialShape(state: unknown): void {
  expect(keys(state)).toEqual(STATE_KEYS);
  const s = state as State & { parent_checkpoint: Json | null };
  if (s.checkpoint !== null) expect(keys(s.checkpoint)).toEqual(REF_KEYS);
  if (s.parent_checkpoint !== null) expect(keys(s.parent_checkpoint)).toEqual(REF_KEYS);
  for (const task of s.tasks) {
    expect(keys(task)).toEqual(TASK_KEYS);
    if (task.state !== null) expectOfficialShape(task.state);
  }
}

async function stream(threadId: string, graph: string, payload: Json): Promise<{ event: string; data: unknown }[]> {
  const events: { event: string; data: unknown }[] = [];
  for await (const e of client.runs.stream(threadId, graph, payload)) events.push({ event: e.event, data: e.data });
  return events;
}

describe("run config (item 10)", () => {
  it("honours config.recursion_limit of the run and of the assistant", async () => {
    const thread = await client.threads.create();
    // Ten steps fit LangGraph's default limit of 25.
    expect(await client.runs.wait(thread.thread_id, "loop", { input: { target: 10 } })).toMatchObject({ count: 10 });

    const limited = await client.threads.create();
    await expect(client.runs.wait(limited.thread_id, "loop", { input: { target: 10 }, config: { recursion_limit: 5 } })).rejects.toThrow(
      /GraphRecursionError: Recursion limit of 5 reached/,
    );
    expect((await client.runs.list(limited.thread_id)).map((r) => r.status)).toEqual(["error"]);
    expect((await client.threads.get(limited.thread_id)).status).toBe("error");

    const assistant = await client.assistants.create({ graphId: "loop", config: { recursion_limit: 4 } });
    const viaAssistant = await client.threads.create();
    await expect(client.runs.wait(viaAssistant.thread_id, assistant.assistant_id, { input: { target: 10 } })).rejects.toThrow(/Recursion limit of 4/);
  });
});

describe("breakpoints (item 11)", () => {
  it.each([
    ["interrupt_before", { interruptBefore: ["second"] }],
    ["interrupt_after", { interruptAfter: ["first"] }],
  ])("a run stopped by %s leaves the thread interrupted until it is resumed", async (_name, breakpoint) => {
    const thread = await client.threads.create();
    await client.runs.wait(thread.thread_id, "steps", { input: { messages: [] }, ...breakpoint });
    expect((await client.threads.get(thread.thread_id)).status).toBe("interrupted");
    expect(((await client.threads.getState(thread.thread_id)) as unknown as State).next).toEqual(["second"]);
    await client.runs.wait(thread.thread_id, "steps", { input: null });
    expect((await client.threads.get(thread.thread_id)).status).toBe("idle");
  });
});

describe("subgraph human-in-the-loop (item 12)", () => {
  it("reads, updates and resumes a subgraph through its task's checkpoint, in the official shape", async () => {
    const thread = await client.threads.create();
    await client.runs.wait(thread.thread_id, "parent", { input: { messages: [{ role: "user", content: "hi", id: "user-1" }] } });
    expect((await client.threads.get(thread.thread_id)).status).toBe("interrupted");

    const root = (await client.threads.getState(thread.thread_id)) as unknown as State;
    expectOfficialShape(root);
    expect(root.next).toEqual(["approval"]);
    const [task] = root.tasks;
    // Without `subgraphs`, a subgraph task names the subgraph's namespace in this thread (no checkpoint id).
    expect(task!.checkpoint).toEqual({ thread_id: thread.thread_id, checkpoint_ns: `approval:${task!.id}` });
    expect(task!.state).toBeNull();
    expect(task!.interrupts).toEqual([{ id: expect.any(String), value: { question: "Approve?", draft: null } }]);

    // With `subgraphs`, the subgraph's own state is nested, in the same shape.
    const nested = (await client.threads.getState(thread.thread_id, undefined, { subgraphs: true })) as unknown as State;
    expectOfficialShape(nested);
    const inner = nested.tasks[0]!.state as unknown as State;
    expect(inner.next).toEqual(["ask"]);
    expect(nested.tasks[0]!.checkpoint).toBeNull();

    // The task's checkpoint reads the subgraph, not the root graph.
    const sub = (await client.threads.getState(thread.thread_id, task!.checkpoint as never)) as unknown as State;
    expectOfficialShape(sub);
    expect(sub.next).toEqual(["ask"]);
    expect(sub.checkpoint).toMatchObject({ thread_id: thread.thread_id, checkpoint_ns: `approval:${task!.id}` });

    // An update with it writes the subgraph's state, as if its `ask` node had answered.
    const updated = (await client.threads.updateState(thread.thread_id, { values: { decision: "edited" }, asNode: "ask", checkpoint: task!.checkpoint as never })) as unknown as Updated;
    expect(keys(updated.checkpoint)).toEqual(REF_KEYS);
    expect(updated.checkpoint).toMatchObject({ thread_id: thread.thread_id, checkpoint_ns: `approval:${task!.id}` });
    const after = (await client.threads.getState(thread.thread_id, task!.checkpoint as never)) as unknown as State;
    expect(after.values.decision).toBe("edited");
    expect(after.next).toEqual(["answer"]);
    expect(((await client.threads.getState(thread.thread_id)) as unknown as State).values.decision).toBeNull();
    expect((await client.threads.get(thread.thread_id)).status).toBe("interrupted");

    // Resuming runs the subgraph on from the update, then the parent.
    const final = (await client.runs.wait(thread.thread_id, "parent", { input: null })) as { messages: { content: string }[] };
    expect(final.messages.map((m) => m.content)).toEqual(["hi", "decided: edited", "after: edited"]);
    expect((await client.threads.get(thread.thread_id)).status).toBe("idle");
    for (const state of await client.threads.getHistory(thread.thread_id, { limit: 3 })) expectOfficialShape(state);
  });

  it("answers the official empty state for a thread with no checkpoint", async () => {
    const thread = await client.threads.create({ metadata: { graph_id: "steps" } });
    expect(await client.threads.getState(thread.thread_id)).toEqual({
      values: {},
      next: [],
      tasks: [],
      metadata: {},
      created_at: null,
      checkpoint: null,
      parent_checkpoint: null,
    });
  });
});

describe("nothing internal reaches a client (item 13)", () => {
  it("debug checkpoints carry references; no event, state, history or record shows Baton's or LangGraph's internal keys", async () => {
    const thread = await client.threads.create();
    const events = await stream(thread.thread_id, "parent", {
      input: { messages: [{ role: "user", content: "hi", id: "user-1" }] },
      streamMode: ["debug", "checkpoints", "tasks", "values", "updates", "events"],
      streamSubgraphs: true,
    });
    const checkpoints = events.filter((e) => e.event.startsWith("debug") && (e.data as { type: string }).type === "checkpoint");
    expect(checkpoints.length).toBeGreaterThanOrEqual(4);
    for (const { data } of checkpoints) {
      const payload = (data as { payload: Json }).payload;
      expect(payload).not.toHaveProperty("parentConfig");
      expect(keys(payload.checkpoint)).toEqual(REF_KEYS);
      if (payload.parent_checkpoint !== null) expect(keys(payload.parent_checkpoint)).toEqual(REF_KEYS);
      for (const task of payload.tasks as Json[]) expect(task).not.toHaveProperty("state");
    }
    // A subgraph task in a root checkpoint names the subgraph's namespace.
    const withSubgraphTask = checkpoints.map((c) => (c.data as { payload: { tasks: Json[] } }).payload.tasks).flat().find((task) => task.name === "approval");
    expect(withSubgraphTask?.checkpoint).toMatchObject({ checkpoint_id: null, checkpoint_ns: expect.stringMatching(/^approval:/) });
    // The `checkpoints` mode sends the checkpoint's values, metadata and next.
    const checkpointEvent = events.find((e) => e.event === "checkpoints");
    expect(keys(checkpointEvent!.data)).toEqual(["metadata", "next", "values"]);

    const [run] = await client.runs.list(thread.thread_id);
    const seen = JSON.stringify([
      events,
      await client.threads.getState(thread.thread_id, undefined, { subgraphs: true }),
      await client.threads.getHistory(thread.thread_id),
      await client.threads.get(thread.thread_id),
      await client.runs.get(thread.thread_id, run!.run_id),
    ]);
    expect(seen).not.toContain("__baton");
    // LangGraph's internal configurable keys (`__pregel_scratchpad`, ...); `__pregel_pull` in task paths is public.
    expect(seen).not.toMatch(/"__pregel_\w+":/);
  });
});

describe("factories (item 14)", () => {
  it("reads and updates the state of a graph built by a factory with its assistant's config", async () => {
    const assistant = await client.assistants.create({ graphId: "configured", config: { configurable: { greeting: "hello" } } });
    const thread = await client.threads.create();
    await client.runs.wait(thread.thread_id, assistant.assistant_id, { input: { messages: [] } });
    const updated = (await client.threads.updateState(thread.thread_id, { values: { messages: [{ role: "user", content: "more", id: "more" }] } })) as unknown as Updated;
    expect(updated.checkpoint).toMatchObject({ thread_id: thread.thread_id, checkpoint_ns: "" });
    const state = (await client.threads.getState(thread.thread_id)) as unknown as State;
    expect((state.values.messages as { content: string }[]).map((m) => m.content)).toEqual(["hello", "more"]);
    expect(await client.threads.getHistory(thread.thread_id)).not.toHaveLength(0);
  });
});

describe("busy threads (item 16)", () => {
  it("refuses a state update while a run is pending on the thread", async () => {
    const thread = await client.threads.create({ metadata: { graph_id: "steps" } });
    const pending = await client.runs.create(thread.thread_id, "steps", { input: { messages: [] }, afterSeconds: 600 });
    await expect(client.threads.updateState(thread.thread_id, { values: { messages: [] } })).rejects.toThrow(
      new RegExp(`409.*busy with run ${pending.run_id}`),
    );
    await client.runs.cancel(thread.thread_id, pending.run_id, true);
    await client.threads.updateState(thread.thread_id, { values: { messages: [] } });
  });
});

describe("legacy messages mode (item 18)", () => {
  /** The fixture model streams "hello streaming world" one character at a time. */
  const TOKENS = "hello streaming world".length;
  const partials = Array<string>(TOKENS).fill("messages/partial");
  const input = { messages: [{ role: "user", content: "hi", id: "user-1" }] };

  it("sends the input and a streamed answer as messages/complete, in the official sequence", async () => {
    const thread = await client.threads.create();
    const events = await stream(thread.thread_id, "chat", { input, streamMode: ["messages"] });
    expect(events.map((e) => e.event)).toEqual(["metadata", "messages/complete", "messages/metadata", ...partials, "messages/complete"]);
    expect(events[1]!.data).toEqual([{ content: "hi", id: "user-1", additional_kwargs: {}, response_metadata: {}, type: "human" }]);
    const last = (events.at(-2)!.data as Json[])[0]!;
    const complete = (events.at(-1)!.data as Json[])[0]!;
    expect(last).toMatchObject({ content: "hello streaming world", type: "ai" });
    expect(complete).toMatchObject({ id: last.id, content: "hello streaming world", type: "ai" });
    const metadata = events[2]!.data as Record<string, { metadata: Json }>;
    expect(Object.keys(metadata)).toEqual([last.id]);
    expect(metadata[last.id as string]!.metadata).toMatchObject({ langgraph_node: "model", ls_provider: "FakeListChatModel" });
  });

  it("ends a messages and values stream with the final values, then the completed answer", async () => {
    const thread = await client.threads.create();
    const events = await stream(thread.thread_id, "chat", { input, streamMode: ["messages", "values"] });
    expect(events.map((e) => e.event)).toEqual([
      "metadata",
      "values",
      "messages/complete",
      "messages/metadata",
      ...partials,
      "values",
      "messages/complete",
    ]);
  });

  it("streams message tuples between values and updates as the official server does", async () => {
    const thread = await client.threads.create();
    const events = await stream(thread.thread_id, "chat", { input, streamMode: ["messages-tuple", "values", "updates"] });
    expect(events.map((e) => e.event)).toEqual(["metadata", "values", ...Array<string>(TOKENS).fill("messages"), "updates", "values"]);
    const [chunk, metadata] = events[2]!.data as [Json, Json];
    expect(chunk).toMatchObject({ content: "h", type: "ai" });
    expect(metadata).toMatchObject({ langgraph_node: "model", tags: [] });
  });
});
