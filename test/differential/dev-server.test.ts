/**
 * Baton is a drop-in for the published dev server, call by call: the same
 * fixture project is served by `langgraphjs dev` (`@langchain/langgraph-cli`)
 * and by Baton, both are driven with the same official SDK calls, and the
 * answers are compared after ids and times are normalised (normalise.ts).
 * Where the dev server differs on purpose (docs/compatibility.md, "Deliberate
 * differences"), the comparison names the row and compares modulo it.
 *
 * Every comparison runs twice, against Baton embedded (in-process, SQLite)
 * and against a scale-out Baton of real processes (one `--role api` and two
 * `--role worker` on Postgres and Redis): an unchanged project must answer
 * the same on both. The dev server runs each script once; its answer is
 * kept for the second target.
 */
import { join } from "node:path";
import type { AssistantVersion, Client, Run } from "@langchain/langgraph-sdk";
import { Command, GraphInterrupt } from "@langchain/langgraph";
import { RemoteGraph } from "@langchain/langgraph/remote";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startCluster, type Cluster, type Member } from "../helpers/cluster.ts";
import { startDevServer, type DevServer } from "../helpers/dev-server.ts";
import { startServer, type TestServer } from "../helpers/server.ts";
import { normalise, shape } from "./normalise.ts";

const PROJECT = join(import.meta.dirname, "../fixtures/differential/langgraph.json");

let dev: DevServer;
let baton: TestServer;
let cluster: Cluster;
let api: Member;
beforeAll(async () => {
  const scaleOut = async () => {
    cluster = await startCluster("differential", {}, PROJECT);
    [api] = await Promise.all([cluster.start("api"), cluster.start("worker"), cluster.start("worker")]);
  };
  [dev, baton] = await Promise.all([startDevServer(PROJECT), startServer({ configPath: PROJECT }), scaleOut()]);
}, 90_000);
afterAll(async () => {
  await Promise.all([dev?.close(), baton?.close(), cluster?.close()]);
});

/** The Batons compared with the dev server, each serving PROJECT. */
const targets = [
  { name: "Baton embedded", client: () => baton.client },
  { name: "Baton scale-out (1 API + 2 worker processes)", client: () => api.client },
];

type Json = Record<string, unknown>;
type Event = { event: string; data: unknown };
type RunRecord = Run & { kwargs: Json };

/**
 * The dev server's answers, by test (without its target) and call number:
 * the first target to run a test asks the dev server, the next reuses it.
 */
const devAnswers = new Map<string, Promise<unknown>>();
let callsInTest = 0;
beforeEach(() => {
  callsInTest = 0;
});

/** `both` for one target: runs the same script against the dev server and the target at once, [dev server's answer, Baton's answer]. */
function bothFor(target: (typeof targets)[number]) {
  return async function both<T>(script: (client: Client) => Promise<T>): Promise<[T, T]> {
    const test = expect.getState().currentTestName!.split(" > ").slice(1).join(" > ");
    const key = `${test} #${callsInTest++}`;
    if (!devAnswers.has(key)) devAnswers.set(key, script(dev.client));
    return Promise.all([devAnswers.get(key) as Promise<T>, script(target.client())]);
  };
}

/**
 * A documented difference: a transform of the dev server's answer into what
 * Baton answers instead, named after its row in docs/compatibility.md
 * ("Deliberate differences from the published dev server").
 */
type Modulo = (value: unknown) => unknown;

/** Applies `change` to every object in `value`, depth first; `change` returns the replacement. */
function mapObjects(value: unknown, change: (object: Json) => Json): unknown {
  if (Array.isArray(value)) return value.map((item) => mapObjects(item, change));
  if (value !== null && typeof value === "object") {
    const out: Json = {};
    for (const [key, item] of Object.entries(value)) out[key] = mapObjects(item, change);
    return change(out);
  }
  return value;
}

const without = (object: Json, keys: readonly string[]): Json => Object.fromEntries(Object.entries(object).filter(([key]) => !keys.includes(key)));

/** A checkpoint's metadata as LangGraph writes it (`source`, `step`, `parents`). */
const isCheckpointMetadata = (object: Json) => "source" in object && "step" in object && "parents" in object;

/**
 * Row "checkpoint and run metadata": Baton adds none of the platform keys,
 * and a subgraph's checkpoint metadata is what LangGraph writes under
 * graph.stream() (the dev server's, under streamEvents(), also has the
 * task's `langgraph_*` keys and `checkpoint_ns`).
 */
const platformMetadata: Modulo = (value) =>
  mapObjects(value, (object) => {
    const platform = without(object, ["langgraph_version", "langgraph_plan", "langgraph_host", "langgraph_api_url"]);
    if (!isCheckpointMetadata(object) || !("checkpoint_ns" in object)) return platform;
    return without(platform, ["checkpoint_ns", "checkpoint_map", "langgraph_checkpoint_ns", "langgraph_node", "langgraph_path", "langgraph_step", "langgraph_triggers"]);
  });

/** Row "checkpoint and run metadata": the dev server also copies the thread's metadata (`keys`) into checkpoints. */
const threadMetadataInCheckpoints =
  (keys: string[]): Modulo =>
  (value) =>
    mapObjects(value, (object) => (isCheckpointMetadata(object) ? without(object, keys) : object));

/** Row "empty thread state": Baton answers `metadata: {}` where the dev server has none. */
const emptyStateMetadata: Modulo = (value) =>
  mapObjects(value, (object) => ("checkpoint" in object && object.checkpoint === null && "tasks" in object && !("metadata" in object) ? { ...object, metadata: {} } : object));

/**
 * Row "thread records": Baton sends `interrupts` ({}) before any run, and
 * `error`; the dev server leaves out what it has not set. Both leave out
 * `values` until the thread has a state.
 */
const threadFields: Modulo = (value) =>
  mapObjects(value, (object) =>
    "thread_id" in object && "status" in object && "created_at" in object ? { interrupts: {}, error: null, ...object } : object,
  );

/**
 * Row "a chat model's reply in a run that streams no messages": the dev server
 * always runs the graph under streamEvents(), so a model streams and its
 * reply is a chunk with id `run-<model call id>` (and `tool_call_chunks` in
 * `updates`); under Baton's graph.stream() the model generates at once and
 * LangGraph's reducer gives the reply a UUID.
 */
const modelNotStreamed: Modulo = (value) =>
  mapObjects(value, (object) => {
    if (object.type !== "ai" || typeof object.id !== "string" || !object.id.startsWith("run-")) return object;
    const { tool_call_chunks: chunks, ...rest } = object;
    return { ...rest, id: object.id.slice("run-".length), ...(Array.isArray(chunks) && chunks.length > 0 ? { tool_call_chunks: chunks } : {}) };
  });

/** Row "`checkpoints` events with `stream_subgraphs` (any modes)": the dev server sends them unasked. */
const unaskedCheckpoints: Modulo = (value) =>
  Array.isArray(value) ? value.filter((e: Event) => !(e.event === "checkpoints" || e.event.startsWith("checkpoints|"))) : value;

/** Asserts that both answers are equal once normalised, modulo the documented differences named. */
function expectSame<T>([fromDev, fromBaton]: [T, T], ...modulo: Modulo[]): void {
  // Transformed before normalising, so ids a transform drops are not numbered.
  const expected = modulo.reduce<unknown>((value, change) => change(value), fromDev);
  expect(normalise(fromBaton)).toEqual(normalise(expected));
}

/**
 * For streams of several modes: the events of each mode, in order, and the
 * order of the `metadata`, `values` and `updates` events among themselves.
 * How token events interleave with the events of other modes is not
 * compared: on both servers it depends on when LangChain's callbacks run.
 */
function byMode(events: Event[]): { modes: Record<string, unknown[]>; order: string[] } {
  const modes: Record<string, unknown[]> = {};
  for (const e of events) (modes[e.event] ??= []).push(e.data);
  const order = events.filter((e) => ["metadata", "values", "updates"].includes(e.event.split("|")[0]!)).map((e) => e.event);
  return { modes, order };
}

async function collect(stream: AsyncIterable<{ event: string; data: unknown }>): Promise<Event[]> {
  const events: Event[] = [];
  for await (const e of stream) events.push({ event: e.event, data: e.data });
  return events;
}

const human = (content: string) => ({ messages: [{ role: "user", content }] });

describe.each(targets)("against $name", (target) => {
  const both = bothFor(target);

  describe("assistants", () => {
    it("searches and gets the system assistants alike (ids included)", async () => {
      const answers = await both(async (client) => {
        const found = await client.assistants.search({ limit: 10 });
        const byGraph = await client.assistants.get("chat");
        const byId = await client.assistants.get(byGraph.assistant_id);
        return { found: found.sort((a, b) => a.graph_id.localeCompare(b.graph_id)), byGraph, byId };
      });
      const ids = new Set(answers[0].found.map((a) => a.assistant_id));
      expect(normalise(answers[1], ids)).toEqual(normalise(answers[0], ids));
    });

    it("creates, updates, versions, searches and runs an assistant alike", async () => {
      const [fromDev, fromBaton] = await both(async (client) => {
        const created = await client.assistants.create({ graphId: "configured", config: { configurable: { flavour: "plum" } }, metadata: { owner: "differential" }, name: "mine" });
        const updated = await client.assistants.update(created.assistant_id, { metadata: { owner: "differential", v: 2 } });
        // The SDK's type leaves out the record's `updated_at`.
        const versions = (await client.assistants.getVersions(created.assistant_id)) as (AssistantVersion & { updated_at?: string })[];
        const found = await client.assistants.search({ metadata: { owner: "differential" } });
        const ran = await client.runs.wait(null, created.assistant_id, { input: {} });
        await client.assistants.delete(created.assistant_id);
        return { created, updated, versions, found, ran };
      });
      // Row "assistant versions": Baton's carry `updated_at` (their creation time).
      for (const version of fromBaton.versions) expect(version.updated_at).toBe(version.created_at);
      const versions = (answer: typeof fromDev) => ({ ...answer, versions: answer.versions.map(({ updated_at: _updated, ...version }) => version) });
      expectSame([versions(fromDev), versions(fromBaton)]);
    });

    it("draws the graphs alike", async () => {
      for (const graph of ["chat", "approve", "parent", "configured"]) {
        expectSame(await both((client) => client.assistants.getGraph(graph)));
        expectSame(await both((client) => client.assistants.getGraph(graph, { xray: true })));
      }
    });
  });

  describe("threads", () => {
    it("creates, gets and searches threads alike", async () => {
      expectSame(
        await both(async (client) => {
          const tag = `t-${crypto.randomUUID()}`;
          const created = await client.threads.create({ metadata: { tag, kind: "differential" } });
          const got = await client.threads.get(created.thread_id);
          const found = await client.threads.search({ metadata: { tag } });
          const state = await client.threads.getState(created.thread_id);
          return { created, got, found, state };
        }),
        threadFields,
        emptyStateMetadata,
      );
    });
  });

  describe("runs", () => {
    it("waits for a run alike", async () => {
      expectSame(
        await both(async (client) => {
          const thread = await client.threads.create();
          const values = await client.runs.wait(thread.thread_id, "chat", { input: human("hi") });
          const after = await client.threads.get(thread.thread_id);
          return { values, after };
        }),
        threadFields,
        modelNotStreamed,
      );
    });

    it("keeps a run's configurable on its thread for the next runs alike", async () => {
      expectSame(
        await both(async (client) => {
          const thread = await client.threads.create();
          const first = await client.runs.wait(thread.thread_id, "configured", { input: {}, config: { configurable: { flavour: "mint", size: 1 } } });
          const second = await client.runs.wait(thread.thread_id, "configured", { input: {}, config: { configurable: { size: 2 } } });
          const third = await client.runs.wait(thread.thread_id, "configured", { input: {} });
          const after = await client.threads.get(thread.thread_id);
          return { first, second, third, after };
        }),
        threadFields,
      );
    });

    for (const streamMode of ["values", "updates", "custom"] as const) {
      it(`streams ${streamMode} alike`, async () => {
        expectSame(
          await both(async (client) => {
            const thread = await client.threads.create();
            return collect(client.runs.stream(thread.thread_id, "chat", { input: human("hi"), streamMode }));
          }),
          modelNotStreamed,
        );
      });
    }

    it("streams messages-tuple alike", async () => {
      expectSame(
        await both(async (client) => {
          const thread = await client.threads.create();
          return collect(client.runs.stream(thread.thread_id, "chat", { input: human("hi"), streamMode: "messages-tuple" }));
        }),
        platformMetadata,
      );
    });

    for (const streamMode of [["values", "updates", "messages-tuple", "custom"], ["messages", "updates", "custom"]] as const) {
      it(`streams ${streamMode.join(" + ")} alike, mode by mode`, async () => {
        const [fromDev, fromBaton] = await both(async (client) => {
          const thread = await client.threads.create();
          return collect(client.runs.stream(thread.thread_id, "chat", { input: human("hi"), streamMode: [...streamMode] }));
        });
        expectSame([byMode(fromDev), byMode(fromBaton)], platformMetadata);
      });
    }

    it("streams tasks and checkpoints alike", async () => {
      expectSame(
        await both(async (client) => {
          const thread = await client.threads.create();
          return collect(client.runs.stream(thread.thread_id, "approve", { input: human("draft it"), streamMode: ["tasks", "checkpoints"] }));
        }),
        platformMetadata,
      );
    });

    it("runs without a thread alike", async () => {
      expectSame(
        await both(async (client) => {
          const waited = await client.runs.wait(null, "chat", { input: human("hi") });
          const streamed = await collect(client.runs.stream(null, "chat", { input: human("hi"), streamMode: "updates" }));
          return { waited, streamed };
        }),
        modelNotStreamed,
      );
      // Row "a run without a thread whose graph calls interrupt()".
      const [fromDev, fromBaton] = await both(async (client) => collect(client.runs.stream(null, "approve", { input: human("draft it") })));
      expect(fromDev.at(-1)).toMatchObject({ event: "error", data: { error: "GraphValueError" } });
      expect(fromBaton.at(-1)).toMatchObject({ event: "values", data: { __interrupt__: [{ value: { question: "Approve the draft?" } }] } });
    });

    it("creates, joins, gets and lists runs alike", async () => {
      const [fromDev, fromBaton] = await both(async (client) => {
        const thread = await client.threads.create();
        // The SDK's type leaves out the record's `kwargs`.
        const created = (await client.runs.create(thread.thread_id, "chat", { input: human("hi"), multitaskStrategy: "reject" })) as RunRecord;
        const joined = await client.runs.join(thread.thread_id, created.run_id);
        const got = (await client.runs.get(thread.thread_id, created.run_id)) as RunRecord;
        const listed = (await client.runs.list(thread.thread_id)) as RunRecord[];
        return { created, joined, got, listed };
      });
      // Row "run records": `kwargs` and `metadata` are the request's on Baton.
      const record = (run: RunRecord) => ({ ...run, kwargs: { input: run.kwargs.input, stream_mode: run.kwargs.stream_mode }, metadata: null });
      const records = (answer: typeof fromDev) => ({ ...answer, created: record(answer.created), got: record(answer.got), listed: answer.listed.map(record) });
      expectSame([records(fromDev), records(fromBaton)], modelNotStreamed);
      expect(fromBaton.got.kwargs.config).toEqual({ configurable: { "user-agent": expect.any(String) } });
      expect(fromBaton.got.metadata).toEqual({});
    });

    it("streams events alike, mode by mode", async () => {
      const [fromDev, fromBaton] = await both(async (client) => {
        const thread = await client.threads.create();
        return collect(client.runs.stream(thread.thread_id, "chat", { input: human("hi"), streamMode: ["events", "values"] }));
      });
      expectSame([byMode(fromDev), byMode(fromBaton)], platformMetadata);
    });

    it("replays a finished resumable run's stream (a documented difference)", async () => {
      const [fromDev, fromBaton] = await both(async (client) => {
        const thread = await client.threads.create();
        const streamed: Event[] = [];
        let runId = "";
        const stream = client.runs.stream(thread.thread_id, "chat", { input: human("hi"), streamResumable: true, onRunCreated: (run) => void (runId = run.run_id) });
        for await (const e of stream) streamed.push({ event: e.event, data: e.data });
        const replayed = await collect(client.runs.joinStream(thread.thread_id, runId));
        return { streamed, replayed };
      });
      expectSame([fromDev.streamed, fromBaton.streamed], modelNotStreamed);
      // Row "joining a finished resumable run's stream": the dev server sends nothing.
      expect(fromDev.replayed).toEqual([]);
      expect(fromBaton.replayed).toEqual(fromBaton.streamed);
    });

    it("streams debug events with the same names and shapes", async () => {
      const [fromDev, fromBaton] = await both(async (client) => {
        const thread = await client.threads.create();
        return collect(client.runs.stream(thread.thread_id, "chat", { input: human("hi"), streamMode: "debug" }));
      });
      expect(fromBaton.map((e) => e.event)).toEqual(fromDev.map((e) => e.event));
      const expected = modelNotStreamed(platformMetadata(fromDev)) as Event[];
      expect(fromBaton.map((e) => shape(e.data))).toEqual(expected.map((e) => shape(e.data)));
    });
  });

  describe("human in the loop", () => {
    it("interrupts, shows the same state and history, and resumes with command.resume", async () => {
      expectSame(
        await both(async (client) => {
          const thread = await client.threads.create();
          const interrupted = await collect(client.runs.stream(thread.thread_id, "approve", { input: human("draft it"), streamMode: ["values", "updates"] }));
          const status = (await client.threads.get(thread.thread_id)).status;
          const state = await client.threads.getState(thread.thread_id);
          const history = await client.threads.getHistory(thread.thread_id);
          const resumed = await collect(client.runs.stream(thread.thread_id, "approve", { command: { resume: "yes" }, streamMode: ["values", "updates"] }));
          const final = await client.threads.getState(thread.thread_id);
          const after = await client.threads.get(thread.thread_id);
          return { interrupted, status, state, history, resumed, final, after };
        }),
        platformMetadata,
        threadFields,
      );
    });

    it("resumes with {input: {}, command} through runs.wait alike", async () => {
      const [fromDev, fromBaton] = await both(async (client) => {
        const thread = await client.threads.create();
        const interrupted = (await client.runs.wait(thread.thread_id, "approve", { input: human("draft it") })) as Json;
        const state = await client.threads.getState(thread.thread_id);
        const resumed = await client.runs.wait(thread.thread_id, "approve", { input: {}, command: { resume: "no" } });
        return { interrupted, state, resumed };
      });
      // Row "wait/join of a run stopped by interrupt()": the dev server answers
      // only `__interrupt__`, Baton the state's values with it.
      expect(normalise(fromBaton.interrupted.__interrupt__)).toEqual(normalise(fromDev.interrupted.__interrupt__));
      expect(fromBaton.interrupted).toEqual({ ...fromBaton.state.values, __interrupt__: fromBaton.interrupted.__interrupt__ });
      expectSame([{ ...fromDev, interrupted: null }, { ...fromBaton, interrupted: null }], platformMetadata);
    });

    it("stops at a breakpoint (interrupt_before) alike", async () => {
      const [fromDev, fromBaton] = await both(async (client) => {
        const thread = await client.threads.create();
        const streamed = await collect(client.runs.stream(thread.thread_id, "approve", { input: human("draft it"), interruptBefore: ["review"] }));
        const after = await client.threads.get(thread.thread_id);
        const state = await client.threads.getState(thread.thread_id);
        const other = await client.threads.create();
        const waited = (await client.runs.wait(other.thread_id, "approve", { input: human("draft it"), interruptBefore: ["review"] })) as Json;
        const otherState = await client.threads.getState(other.thread_id);
        return { streamed, after, state, waited, otherState };
      });
      // Row "thread `interrupts` at a breakpoint": the dev server lists each next task with [].
      expect(fromBaton.after.interrupts).toEqual({});
      // Row "wait/join of a run stopped by interrupt()": Baton answers the state's values with `__interrupt__`.
      expect(fromBaton.waited).toEqual({ ...fromBaton.otherState.values, __interrupt__: [] });
      expect(fromDev.waited).toEqual({ __interrupt__: [] });
      const breakpointInterrupts = (value: unknown) => ({ ...(value as Json), after: { ...((value as Json).after as Json), interrupts: {} } });
      expectSame([{ ...fromDev, waited: null }, { ...fromBaton, waited: null }], platformMetadata, threadFields, breakpointInterrupts);
    });

    it("copies an interrupted thread", async () => {
      const [fromDev, fromBaton] = await both(async (client) => {
        const thread = await client.threads.create({ metadata: { kind: "original" } });
        await client.runs.wait(thread.thread_id, "approve", { input: human("draft it") });
        const copy = await client.threads.copy(thread.thread_id);
        const state = await client.threads.getState(copy.thread_id);
        const resumed = await client.runs.wait(copy.thread_id, "approve", { command: { resume: "yes" } });
        return { copy, state, resumed };
      });
      // Row "thread copy": the dev server's copy starts idle and empty, with
      // its own id in its metadata; Baton's keeps the original's record.
      expect(fromBaton.copy).toMatchObject({ status: "interrupted", values: fromBaton.state.values, metadata: { kind: "original" } });
      const record = (copy: { thread_id: string; created_at: string }) => ({ thread_id: copy.thread_id, created_at: copy.created_at });
      expectSame([{ ...fromDev, copy: record(fromDev.copy) }, { ...fromBaton, copy: record(fromBaton.copy) }], platformMetadata, threadMetadataInCheckpoints(["kind"]));
    });

    it("updates the state as a node, and reads it and its history alike", async () => {
      const [fromDev, fromBaton] = await both(async (client) => {
        const thread = await client.threads.create();
        await client.runs.wait(thread.thread_id, "approve", { input: human("draft it") });
        const updated = await client.threads.updateState(thread.thread_id, { values: { decision: "forced" }, asNode: "review" });
        const state = await client.threads.getState(thread.thread_id);
        const history = await client.threads.getHistory(thread.thread_id, { limit: 2 });
        const after = await client.threads.get(thread.thread_id);
        const finished = await client.runs.wait(thread.thread_id, "approve", { input: null });
        return { updated, state, history, after, finished };
      });
      // Row "thread `interrupts` after a state update": the dev server keeps
      // the interrupt the update answered, Baton reads them from the new state.
      expect(fromBaton.after.interrupts).toEqual({});
      expectSame([fromDev, fromBaton], platformMetadata, threadFields, (value) => ({ ...(value as Json), after: { ...((value as Json).after as Json), interrupts: {} } }));
    });

    it("interrupts inside a subgraph and resumes alike", async () => {
      expectSame(
        await both(async (client) => {
          const thread = await client.threads.create();
          const streamMode = ["values", "updates"] as ("values" | "updates")[];
          const interrupted = await collect(client.runs.stream(thread.thread_id, "parent", { input: human("ask"), streamMode, streamSubgraphs: true }));
          const state = await client.threads.getState(thread.thread_id, undefined, { subgraphs: true });
          const history = await client.threads.getHistory(thread.thread_id);
          const inner = state.tasks[0]?.checkpoint ? await client.threads.getState(thread.thread_id, state.tasks[0].checkpoint) : null;
          const resumed = await collect(client.runs.stream(thread.thread_id, "parent", { command: { resume: "ok" }, streamMode, streamSubgraphs: true }));
          const final = await client.threads.getState(thread.thread_id, undefined, { subgraphs: true });
          return { interrupted, state, history, inner, resumed, final };
        }),
        platformMetadata,
        (value) => ({ ...(value as Json), interrupted: unaskedCheckpoints((value as Json).interrupted), resumed: unaskedCheckpoints((value as Json).resumed) }),
      );
    });
  });

  describe("store", () => {
    it("puts, gets, searches and lists alike, with what a graph wrote", async () => {
      const [fromDev, fromBaton] = await both(async (client) => {
        const thread = await client.threads.create();
        await client.runs.wait(thread.thread_id, "chat", { input: human("note it") });
        await client.store.putItem(["differential", "users"], "ada", { name: "Ada", langs: ["ts"] });
        await client.store.putItem(["differential", "users"], "bob", { name: "Bob", langs: ["py"] });
        const note = await client.store.getItem(["differential", "notes"], "last");
        const user = await client.store.getItem(["differential", "users"], "ada");
        const missing = await client.store.getItem(["differential", "users"], "nobody");
        const all = (await client.store.searchItems(["differential"])).items;
        const filtered = await client.store.searchItems(["differential", "users"], { filter: { name: "Bob" } });
        const namespaces = await client.store.listNamespaces({ prefix: ["differential"] });
        await client.store.deleteItem(["differential", "users"], "bob");
        const deleted = await client.store.getItem(["differential", "users"], "bob");
        return { note, user, missing, all, filtered, namespaces, deleted };
      });
      // Row "store search order": the dev server lists items in the order they
      // were first put, Baton the most recently updated first.
      const inOrder = (items: { key: string }[]) => [...items].sort((a, b) => a.key.localeCompare(b.key));
      expect(fromBaton.all.map((item) => item.key)).toEqual(["bob", "ada", "last"]);
      expectSame([{ ...fromDev, all: inOrder(fromDev.all) }, { ...fromBaton, all: inOrder(fromBaton.all) }]);
    });
  });

  describe("RemoteGraph", () => {
    it("invokes, streams and reads state alike", async () => {
      expectSame(
        await both(async (client) => {
          const remote = new RemoteGraph({ graphId: "approve", client });
          const thread = await client.threads.create();
          const config = { configurable: { thread_id: thread.thread_id } };
          const interrupt = await remote.invoke(human("draft it"), config).then(
            () => null,
            (error: unknown) => (error instanceof GraphInterrupt ? error.interrupts : error),
          );
          const state = await remote.getState(config);
          const streamed: unknown[] = [];
          for await (const chunk of await remote.stream(new Command({ resume: "yes" }), { ...config, streamMode: ["values", "updates"] })) streamed.push(chunk);
          const final = await remote.getState(config);
          const history: unknown[] = [];
          for await (const snapshot of remote.getStateHistory(config)) history.push(snapshot);
          const chat = new RemoteGraph({ graphId: "chat", client });
          const other = await client.threads.create();
          const invoked = await chat.invoke(human("hi"), { configurable: { thread_id: other.thread_id } });
          return { interrupt, state, streamed, final, history, invoked };
        }),
        platformMetadata,
        modelNotStreamed,
      );
    });
  });
});

describe("the scale-out target", () => {
  it("executed the runs in its worker processes, none in its API process", () => {
    const claims = (member: Member) => member.baton.output().stderr.split("\n").filter((line) => line.includes('"run:claimed"')).length;
    const workers = cluster.members.filter((member) => member.role === "worker");
    expect(claims(api)).toBe(0);
    expect(workers.map(claims).reduce((a, b) => a + b)).toBeGreaterThan(20);
  });

  it("has the interrupt on the thread when a client reads it on the interrupt notice", async () => {
    // RemoteGraph.invoke throws at the `__interrupt__` update and the caller
    // reads the state at once: the worker's Postgres checkpoint writes must
    // be durable by then (they lagged behind the notice one time in three).
    const remote = new RemoteGraph({ graphId: "approve", client: api.client });
    for (let i = 0; i < 15; i++) {
      const config = { configurable: { thread_id: (await api.client.threads.create()).thread_id } };
      await expect(remote.invoke(human("draft it"), config)).rejects.toBeInstanceOf(GraphInterrupt);
      const state = await remote.getState(config);
      expect({ next: state.next, interrupts: state.tasks[0]?.interrupts.length }).toEqual({ next: ["review"], interrupts: 1 });
    }
  });
});
