/**
 * Thread streams (`GET /threads/{thread_id}/stream`, the SDK's
 * `threads.joinStream`): every run of a thread with its lifecycle, the modes
 * the contract names, and `Last-Event-ID` resume giving exactly the missed
 * events (C8). The runs block on gates this test opens; nothing sleeps.
 * Access: `threads:read` with the thread id; another user's thread is 404.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig, loadProject } from "../../src/config.ts";
import type { Authorization, Authorizer, Resource, ResourceActions } from "../../src/core/authorizer.ts";
import type { RequestContext } from "../../src/core/context.ts";
import { createLogger, createServer, type BatonServer } from "../../src/server.ts";
import { gate } from "../fixtures/graphs/graphs.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { EXECUTION_THREADS, FIXTURES, human, REDIS_URL, SCALE_OUT } from "../helpers/server.ts";

/** Threads belong to the `x-owner` header of whoever created them (threads:create sets metadata.owner), and are read through that filter. */
class OwnerAuthorizer implements Authorizer {
  reads: { event: string; value: unknown }[] = [];
  async authorize<R extends Resource, V extends object>(ctx: RequestContext, resource: R, action: ResourceActions[R], value: V): Promise<Authorization<V>> {
    const owner = ctx.headers["x-owner"];
    if (resource !== "threads" || owner === undefined) return { value };
    if (action === "read") this.reads.push({ event: `${resource}:${action}`, value: structuredClone(value) });
    if (action === "create") return { value: { ...value, metadata: { ...(value as { metadata?: object }).metadata, owner } }, filter: { owner } };
    return { value, filter: { owner } };
  }
}

const authorizer = new OwnerAuthorizer();
let server: BatonServer;
let database: TestDatabase | undefined;
let dataDir: string;
let client: Client;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "baton-thread-stream-"));
  database = SCALE_OUT ? await freshDatabase("threadstream") : undefined;
  const backend = database === undefined ? { executionThreads: EXECUTION_THREADS } : { databaseUrl: database.url, redisUrl: REDIS_URL, redisPrefix: `baton-test:${randomUUID()}:` };
  const config = loadConfig({ port: 0, dataDir, configPath: FIXTURES, shutdownGraceMs: 0, keepAliveMs: 200, ...backend }, {});
  const logger = createLogger({ level: "warn", format: "json", write: (line) => process.stderr.write(line) });
  server = await createServer(config, loadProject(config.configPath, {}), logger, undefined, { authorizer });
  client = clientAs("alice");
});

afterAll(async () => {
  await server?.close(0);
  await database?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

beforeEach(() => {
  authorizer.reads = [];
});

const clientAs = (owner: string) => new Client({ apiUrl: server.url, defaultHeaders: { "x-owner": owner } });

type Part = { event: string; id?: string | undefined; data?: unknown };
const isDone = (part: Part) => part.event === "metadata" && (part.data as { status?: string }).status === "run_done";

/** Reads a thread stream until `stop` says so (the connection is then closed), and returns what came. */
async function readUntil(stream: AsyncIterable<Part>, stop: (parts: Part[]) => boolean): Promise<Part[]> {
  const parts: Part[] = [];
  for await (const part of stream) {
    parts.push(part);
    if (stop(parts)) break;
  }
  return parts;
}

const doneCount = (n: number) => (parts: Part[]) => parts.filter(isDone).length >= n;

/** A run of the `gated` fixture on the thread, blocked on a new gate until `open()`; resolves once the graph waits on it. */
async function gatedRun(thread: string, options: { enqueued?: boolean } = {}) {
  const name = `ts-${randomUUID()}`;
  const g = gate(name);
  const run = await client.runs.create(thread, "gated", { input: human(`gate:${name}`), streamMode: ["values", "updates"], multitaskStrategy: "enqueue" });
  if (options.enqueued !== true) await expect.poll(() => g.entered).toBe(1);
  return { run, g };
}

describe("thread streams", () => {
  it("carries every run of the thread in turn, each with its start and its end", async () => {
    const thread = await client.threads.create();
    const first = await gatedRun(thread.thread_id);
    const second = await gatedRun(thread.thread_id, { enqueued: true });
    // From the oldest event kept ("-"): nothing published before this request is missed.
    const reading = readUntil(client.threads.joinStream(thread.thread_id, { lastEventId: "-" }), doneCount(2));
    first.g.open();
    await expect.poll(() => second.g.entered).toBe(1);
    second.g.open();
    const parts = await reading;

    const runOf = (p: Part) => (p.data as { run_id?: string }).run_id;
    const lifecycle = parts.filter((p) => p.event === "metadata");
    expect(lifecycle.map((p) => [runOf(p), (p.data as { status?: string }).status ?? "start"])).toEqual([
      [first.run.run_id, "start"],
      [first.run.run_id, "run_done"],
      [second.run.run_id, "start"],
      [second.run.run_id, "run_done"],
    ]);
    expect(lifecycle.filter(isDone).map((p) => (p.data as { run_status: string }).run_status)).toEqual(["success", "success"]);
    // Each run's own events between its start and its end: both steps' updates, in order.
    const secondStart = parts.indexOf(lifecycle[2]!);
    const updates = (from: number, to: number) => parts.slice(from, to).filter((p) => p.event === "updates").map((p) => Object.keys(p.data as object));
    expect(updates(0, secondStart)).toEqual([["wait"], ["reply"]]);
    expect(updates(secondStart, parts.length)).toEqual([["wait"], ["reply"]]);
    // Ids increase along the stream (they are the thread log's, across runs).
    const ids = parts.map((p) => p.id!);
    expect(new Set(ids).size).toBe(ids.length);
    expect(authorizer.reads).toContainEqual({ event: "threads:read", value: { thread_id: thread.thread_id } });
  });

  it("resumes after a dropped connection with exactly the missed events, across runs", async () => {
    const thread = await client.threads.create();
    const first = await gatedRun(thread.thread_id);
    const second = await gatedRun(thread.thread_id, { enqueued: true });
    // Read until the first run is done, then drop the connection.
    first.g.open();
    const before = await readUntil(client.threads.joinStream(thread.thread_id, { lastEventId: "-" }), doneCount(1));
    // Meanwhile the second run starts and finishes.
    await expect.poll(() => second.g.entered).toBe(1);
    second.g.open();
    await client.runs.join(thread.thread_id, second.run.run_id);
    const rest = await readUntil(client.threads.joinStream(thread.thread_id, { lastEventId: before.at(-1)!.id! }), doneCount(1));
    const all = await readUntil(client.threads.joinStream(thread.thread_id, { lastEventId: "-" }), doneCount(2));
    expect([...before, ...rest].map((p) => p.id)).toEqual(all.map((p) => p.id));
    expect([...before, ...rest].map((p) => p.event)).toEqual(all.map((p) => p.event));
    expect(rest[0]).toMatchObject({ event: "metadata", data: { run_id: second.run.run_id } });
  });

  it("resumes in the middle of a run, and then follows it live", async () => {
    const thread = await client.threads.create();
    const run = await gatedRun(thread.thread_id);
    // The run waits on its gate: its start and first values are out. Read them, drop, resume.
    const head = await readUntil(client.threads.joinStream(thread.thread_id, { lastEventId: "-" }), (parts) => parts.some((p) => p.event === "values"));
    const resumed = readUntil(client.threads.joinStream(thread.thread_id, { lastEventId: head.at(-1)!.id! }), doneCount(1));
    run.g.open();
    const tail = await resumed;
    const all = await readUntil(client.threads.joinStream(thread.thread_id, { lastEventId: "-" }), doneCount(1));
    expect([...head, ...tail].map((p) => p.id)).toEqual(all.map((p) => p.id));
  });

  it("filters by stream mode: lifecycle gives starts and ends only, state_update the state", async () => {
    const thread = await client.threads.create();
    const run = await gatedRun(thread.thread_id);
    run.g.open();
    await client.runs.join(thread.thread_id, run.run.run_id);
    const lifecycle = await readUntil(client.threads.joinStream(thread.thread_id, { lastEventId: "-", streamMode: "lifecycle" }), doneCount(1));
    expect(lifecycle.map((p) => p.event)).toEqual(["metadata", "metadata"]);
    const state = await readUntil(client.threads.joinStream(thread.thread_id, { lastEventId: "-", streamMode: ["state_update", "lifecycle"] }), doneCount(1));
    expect(new Set(state.map((p) => p.event))).toEqual(new Set(["metadata", "values", "updates"]));
    // The contract's own parameter name works too, and a mode it does not name is refused.
    const named = await fetch(`${server.url}/threads/${thread.thread_id}/stream?stream_modes=sideways`, { headers: { "x-owner": "alice" } });
    expect(named.status).toBe(422);
    expect(((await named.json()) as { detail: string }).detail).toMatch(/lifecycle, run_modes|run_modes, lifecycle/);
  });

  it("gives a run cancelled while pending its end, so a reader never waits on a run that will not run", async () => {
    const thread = await client.threads.create();
    const first = await gatedRun(thread.thread_id);
    const interrupted = await gatedRun(thread.thread_id, { enqueued: true });
    const rolledBack = await gatedRun(thread.thread_id, { enqueued: true });
    const reading = readUntil(client.threads.joinStream(thread.thread_id, { lastEventId: "-", streamMode: "lifecycle" }), doneCount(3));
    await client.runs.cancel(thread.thread_id, interrupted.run.run_id, false, "interrupt");
    await client.runs.cancel(thread.thread_id, rolledBack.run.run_id, false, "rollback");
    first.g.open();
    const ends = (await reading).filter(isDone).map((p) => p.data as { run_id: string; run_status: string });
    expect(ends).toEqual([
      { run_id: interrupted.run.run_id, status: "run_done", run_status: "interrupted" },
      { run_id: rolledBack.run.run_id, status: "run_done", run_status: "rolled_back" },
      { run_id: first.run.run_id, status: "run_done", run_status: "success" },
    ]);
  });

  it("answers 404 for another user's thread and for a thread that does not exist", async () => {
    const thread = await client.threads.create();
    for (const [who, id] of [
      ["mallory", thread.thread_id],
      ["alice", randomUUID()],
    ] as const) {
      const response = await fetch(`${server.url}/threads/${id}/stream`, { headers: { "x-owner": who } });
      expect(response.status).toBe(404);
      await response.body?.cancel();
    }
    await expect(readUntil(clientAs("mallory").threads.joinStream(thread.thread_id), () => true)).rejects.toThrow(/404|not found/i);
  });
});
