/**
 * Thread TTLs (docs/threads.md) through the official SDK, on both backends:
 * a TTL given at creation or by PATCH is stored and shown with
 * `?include=ttl`, langgraph.json's default applies to threads created
 * without one, `delete` removes an expired thread with its runs,
 * `keep_latest` keeps its latest state only, activity pushes the expiry
 * back, a thread with a pending or running run is never swept, two
 * sweepers at once take each expired thread once, and a bad TTL is a 422.
 *
 * Expiry is tested without waiting: the server sweeps on demand as of a
 * time the test gives (`BatonServer.sweepThreads(atMs)`), which leaves the
 * clock that leases and claims are judged by alone.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gate } from "../fixtures/graphs/graphs.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { EXECUTION_THREADS, FIXTURES, human, REDIS_URL, SCALE_OUT } from "../helpers/server.ts";
import { loadConfig, loadProject } from "../../src/config.ts";
import { createLogger, createServer, type BatonServer } from "../../src/server.ts";

const TTL_PROJECT = join(import.meta.dirname, "../fixtures/projects/thread-ttl/langgraph.json");
const OWN_SAVER_PROJECT = join(import.meta.dirname, "../fixtures/projects/thread-ttl/langgraph.own-saver.json");
const MINUTE = 60_000;
/** The SDK's type admits strategy "delete" only, though it sends what it is given and the contract has both. */
const KEEP_LATEST = (ttl: number) => ({ strategy: "keep_latest", ttl }) as unknown as { strategy: "delete"; ttl: number };

interface Started {
  server: BatonServer;
  client: Client;
  close(): Promise<void>;
}

/** A server on its own data directory, or on `database` (scale-out) when given. */
async function start(configPath: string, database: TestDatabase | undefined, redisPrefix = `baton-test:${randomUUID()}:`): Promise<Started> {
  const dataDir = mkdtempSync(join(tmpdir(), "baton-ttl-"));
  const storage = database === undefined ? { executionThreads: EXECUTION_THREADS } : { databaseUrl: database.url, redisUrl: REDIS_URL, redisPrefix };
  const config = loadConfig({ port: 0, dataDir, configPath, shutdownGraceMs: 0, ...storage }, {});
  const logger = createLogger({ level: "warn", format: "json", write: (line) => process.stderr.write(line) });
  const server = await createServer(config, loadProject(config.configPath, {}), logger);
  return {
    server,
    client: new Client({ apiUrl: server.url }),
    async close() {
      await server.close(0);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const call = async (url: string, method: string, path: string, body?: unknown) => {
  const response = await fetch(`${url}${path}`, { method, headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

/** When the thread's TTL expires, as the API shows it. */
async function expiresAt(client: Client, threadId: string): Promise<number> {
  const thread = (await client.threads.get(threadId, { include: ["ttl"] })) as unknown as { ttl: { expires_at: string } };
  return Date.parse(thread.ttl.expires_at);
}

describe("thread TTLs", () => {
  let database: TestDatabase | undefined;
  let t: Started;

  beforeAll(async () => {
    database = SCALE_OUT ? await freshDatabase("thread_ttl") : undefined;
    t = await start(FIXTURES, database);
  });
  afterAll(async () => {
    await t?.close();
    await database?.drop();
  });

  it("stores a TTL given at creation and shows it only with ?include=ttl", async () => {
    const thread = await t.client.threads.create({ ttl: { strategy: "delete", ttl: 10 } });
    expect(thread).not.toHaveProperty("ttl");
    expect(await t.client.threads.get(thread.thread_id)).not.toHaveProperty("ttl");
    const shown = (await t.client.threads.get(thread.thread_id, { include: ["ttl"] })) as unknown as { ttl: Record<string, unknown>; updated_at: string };
    expect(shown.ttl).toEqual({ strategy: "delete", ttl_minutes: 10, expires_at: new Date(Date.parse(shown.updated_at) + 10 * MINUTE).toISOString() });
    // The contract's comma-separated form, and a number is the SDK's shorthand for strategy delete.
    expect((await call(t.server.url, "GET", `/threads/${thread.thread_id}?include=ttl`)).body.ttl).toEqual(shown.ttl);
    const short = await t.client.threads.create({ ttl: 0.5 });
    expect((await t.client.threads.get(short.thread_id, { include: ["ttl"] })) as unknown).toMatchObject({ ttl: { strategy: "delete", ttl_minutes: 0.5 } });
    // A copy takes its source's TTL, counted from the copy's creation.
    const copy = await t.client.threads.copy(thread.thread_id);
    const copied = (await t.client.threads.get(copy.thread_id, { include: ["ttl"] })) as unknown as { ttl: Record<string, unknown>; created_at: string };
    expect(copied.ttl).toEqual({ strategy: "delete", ttl_minutes: 10, expires_at: new Date(Date.parse(copied.created_at) + 10 * MINUTE).toISOString() });
    // No TTL: nothing to show, even when asked.
    const plain = await t.client.threads.create();
    expect(await t.client.threads.get(plain.thread_id, { include: ["ttl"] })).not.toHaveProperty("ttl");
  });

  it("refuses a bad TTL with 422 naming it, and creates or changes nothing", async () => {
    const before = await t.client.threads.count();
    for (const ttl of [{ ttl: 0 }, { ttl: 5e-324 }, { ttl: 0.009 }, { ttl: -5 }, { strategy: "delete" }, { ttl: "soon" }, { strategy: "archive", ttl: 5 }, 5, { ttl: 1e12 }]) {
      const created = await call(t.server.url, "POST", "/threads", { ttl });
      expect(created.status, JSON.stringify(ttl)).toBe(422);
      expect(created.body.detail).toMatch(/ttl/);
    }
    expect(await t.client.threads.count()).toBe(before);
    const thread = await t.client.threads.create({ metadata: { kept: true } });
    const patched = await call(t.server.url, "PATCH", `/threads/${thread.thread_id}`, { metadata: { kept: false }, ttl: { ttl: 0 } });
    expect(patched.status).toBe(422);
    expect((await t.client.threads.get(thread.thread_id)).metadata).toEqual({ kept: true });
    expect((await call(t.server.url, "GET", `/threads/${thread.thread_id}?include=ttl,color`)).status).toBe(422);
    // null is "not set".
    expect((await call(t.server.url, "POST", "/threads", { ttl: null })).status).toBe(200);
  });

  it("delete: an expired thread goes with its runs and checkpoints; one not yet expired stays", async () => {
    const thread = await t.client.threads.create({ ttl: { strategy: "delete", ttl: 10 } });
    const run = await t.client.runs.create(thread.thread_id, "echo", { input: human("hi") });
    await t.client.runs.join(thread.thread_id, run.run_id);
    const expiry = await expiresAt(t.client, thread.thread_id);
    expect((await t.server.sweepThreads(expiry - 1)).deleted).not.toContain(thread.thread_id);
    expect((await t.client.threads.get(thread.thread_id)).thread_id).toBe(thread.thread_id);
    const swept = await t.server.sweepThreads(expiry);
    expect(swept.deleted).toContain(thread.thread_id);
    await expect(t.client.threads.get(thread.thread_id)).rejects.toThrow(/404/);
    await expect(t.client.runs.get(thread.thread_id, run.run_id)).rejects.toThrow(/404/);
    expect(await t.client.threads.search({ ids: [thread.thread_id] })).toEqual([]);
  });

  it("keep_latest: an expired thread keeps only its latest state, and is not swept again until it is used", async () => {
    const thread = await t.client.threads.create({ ttl: KEEP_LATEST(5) });
    await t.client.runs.wait(thread.thread_id, "echo", { input: human("one") });
    await t.client.runs.wait(thread.thread_id, "echo", { input: human("two") });
    const before = await t.client.threads.getState(thread.thread_id);
    expect((await t.client.threads.getHistory(thread.thread_id, { limit: 100 })).length).toBeGreaterThan(1);
    const expiry = await expiresAt(t.client, thread.thread_id);
    const swept = await t.server.sweepThreads(expiry);
    expect(swept.pruned).toContain(thread.thread_id);
    expect(swept.deleted).not.toContain(thread.thread_id);
    expect(await t.client.threads.getHistory(thread.thread_id, { limit: 100 })).toHaveLength(1);
    expect((await t.client.threads.getState(thread.thread_id)).values).toEqual(before.values);
    // Disarmed: a later sweep leaves it alone; the TTL stays, without an expiry.
    expect((await t.server.sweepThreads(expiry + 60 * MINUTE)).pruned).not.toContain(thread.thread_id);
    expect(((await t.client.threads.get(thread.thread_id, { include: ["ttl"] })) as unknown as { ttl: unknown }).ttl).toEqual({ strategy: "keep_latest", ttl_minutes: 5 });
    // Used again: armed from that activity, and the conversation goes on from the kept state.
    const after = await t.client.runs.wait(thread.thread_id, "echo", { input: human("three") });
    expect(JSON.stringify(after)).toContain("echo: three");
    expect(await expiresAt(t.client, thread.thread_id)).toBeGreaterThan(expiry);
  });

  it("activity pushes the expiry back: a run, a PATCH; a PATCH with a TTL replaces it", async () => {
    const thread = await t.client.threads.create({ ttl: { ttl: 10 } });
    const first = await expiresAt(t.client, thread.thread_id);
    await t.client.runs.wait(thread.thread_id, "echo", { input: human("again") });
    const afterRun = await expiresAt(t.client, thread.thread_id);
    expect(afterRun).toBeGreaterThan(first);
    // Due by its first expiry, but not by the one the run's activity set.
    expect((await t.server.sweepThreads(afterRun - 1)).deleted).not.toContain(thread.thread_id);
    const updated = (await t.client.threads.update(thread.thread_id, { ttl: { strategy: "delete", ttl: 60 } })) as unknown as { updated_at: string };
    expect((await t.client.threads.get(thread.thread_id, { include: ["ttl"] })) as unknown).toMatchObject({
      ttl: { strategy: "delete", ttl_minutes: 60, expires_at: new Date(Date.parse(updated.updated_at) + 60 * MINUTE).toISOString() },
    });
    expect((await t.server.sweepThreads(afterRun + 30 * MINUTE)).deleted).not.toContain(thread.thread_id);
    // A metadata-only PATCH keeps the TTL and counts as activity.
    await t.client.threads.update(thread.thread_id, { metadata: { touched: true } });
    expect((await t.client.threads.get(thread.thread_id, { include: ["ttl"] })) as unknown).toMatchObject({ ttl: { strategy: "delete", ttl_minutes: 60 } });
  });

  it("never sweeps a thread with a running or pending run; sweeps it once its runs have ended and it expires again", async () => {
    const thread = await t.client.threads.create({ ttl: { ttl: 1 } });
    const name = `g-${randomUUID()}`;
    const g = gate(name);
    const running = await t.client.runs.create(thread.thread_id, "gated", { input: human(`gate:${name}`) });
    await expect.poll(() => g.entered).toBe(1);
    const queued = await t.client.runs.create(thread.thread_id, "echo", { input: human("queued") });
    const expiry = await expiresAt(t.client, thread.thread_id);
    const swept = await t.server.sweepThreads(expiry + 60 * MINUTE);
    expect(swept.deleted).not.toContain(thread.thread_id);
    expect((await t.client.runs.get(thread.thread_id, running.run_id)).status).toBe("running");
    g.open();
    await t.client.runs.join(thread.thread_id, running.run_id);
    await t.client.runs.join(thread.thread_id, queued.run_id);
    expect((await t.client.runs.get(thread.thread_id, queued.run_id)).status).toBe("success");
    // The end of its last run was activity: expired one minute after it.
    const after = await expiresAt(t.client, thread.thread_id);
    expect(after).toBeGreaterThan(expiry);
    expect((await t.server.sweepThreads(after - 1)).deleted).not.toContain(thread.thread_id);
    expect((await t.server.sweepThreads(after)).deleted).toContain(thread.thread_id);
  });

  it("never sweeps a thread with an enabled cron: the cron would go with it; once disabled, the thread expires", async () => {
    const thread = await t.client.threads.create({ ttl: { strategy: "delete", ttl: 1 } });
    const cron = await t.client.crons.createForThread(thread.thread_id, "echo", { schedule: "0 0 1 1 *", input: human("yearly") });
    const expiry = await expiresAt(t.client, thread.thread_id);
    expect((await t.server.sweepThreads(expiry + 60 * MINUTE)).deleted).not.toContain(thread.thread_id);
    expect((await t.client.crons.search({ threadId: thread.thread_id })).map((found) => found.cron_id)).toEqual([cron.cron_id]);
    await t.client.crons.update(cron.cron_id, { enabled: false });
    expect((await t.server.sweepThreads(expiry + 60 * MINUTE)).deleted).toContain(thread.thread_id);
    await expect(t.client.threads.get(thread.thread_id)).rejects.toThrow(/404/);
  });

  it("prune (the API) and the sweep share one path: prune with keep_latest leaves the TTL armed", async () => {
    const thread = await t.client.threads.create({ ttl: { strategy: "delete", ttl: 10 } });
    await t.client.runs.wait(thread.thread_id, "echo", { input: human("one") });
    await t.client.runs.wait(thread.thread_id, "echo", { input: human("two") });
    expect(await t.client.threads.prune([thread.thread_id], { strategy: "keep_latest" })).toEqual({ pruned_count: 1 });
    expect(await t.client.threads.getHistory(thread.thread_id, { limit: 100 })).toHaveLength(1);
    const expiry = await expiresAt(t.client, thread.thread_id);
    expect((await t.server.sweepThreads(expiry)).deleted).toContain(thread.thread_id);
  });

  it("prune with delete takes a thread's pending runs along and answers a client waiting on one at once", async () => {
    const thread = await t.client.threads.create();
    const delayed = await t.client.runs.create(thread.thread_id, "echo", { input: human("later"), afterSeconds: 3600 });
    // Answered by the stream's end, not by the join's 30 s safety poll: well before 5 s, or the join is abandoned.
    const signal = AbortSignal.timeout(5_000);
    const waiting = t.client.runs.join(thread.thread_id, delayed.run_id, { signal }).then(
      () => "answered",
      () => (signal.aborted ? "still waiting after 5 s" : "answered"),
    );
    expect(await t.client.threads.prune([thread.thread_id])).toEqual({ pruned_count: 1 });
    expect(await waiting).toBe("answered");
    await expect(t.client.runs.get(thread.thread_id, delayed.run_id)).rejects.toThrow(/404/);
  });

  it("runs created on expired threads while sweeps run: each is refused (404) or its thread survives and the run succeeds, never a 500", async () => {
    const ids = await Promise.all(Array.from({ length: 40 }, () => t.client.threads.create({ ttl: { strategy: "delete", ttl: 1 } }).then((thread) => thread.thread_id)));
    // Every thread has expired by `at`; a run created now is activity that moves its thread's expiry past `at`.
    const at = Math.max(...(await Promise.all(ids.map((id) => expiresAt(t.client, id))))) + 1;
    // The sweeps start once a few creations have been answered, so both orders happen while the rest are in flight.
    let answered = 0;
    let started!: () => void;
    const fewAnswered = new Promise<void>((resolve) => (started = resolve));
    const creations = Promise.all(
      ids.map(async (id) => {
        const response = await call(t.server.url, "POST", `/threads/${id}/runs`, { assistant_id: "echo", input: human("race") });
        if (++answered === 3) started();
        return { id, ...response };
      }),
    );
    const sweeps = fewAnswered.then(() => Promise.all([t.server.sweepThreads(at), t.server.sweepThreads(at), t.server.sweepThreads(at)]));
    const [created, swept] = await Promise.all([creations, sweeps]);
    const deleted = new Set(swept.flatMap((sweep) => sweep.deleted));
    for (const { id, status, body } of created) {
      expect([200, 404], `${id}: ${JSON.stringify(body)}`).toContain(status);
      if (status === 404) {
        expect(deleted.has(id)).toBe(true);
        continue;
      }
      expect(deleted.has(id)).toBe(false);
      await t.client.runs.join(id, body.run_id as string);
      expect((await t.client.runs.get(id, body.run_id as string)).status).toBe("success");
      expect((await t.client.threads.get(id)).thread_id).toBe(id);
    }
  });

  it("two sweepers at once take each expired thread once, and leave a busy one alone", async () => {
    // Scale-out: a second server on the same database. Embedded mode owns its data directory, so its
    // second sweep is a second call on the same server (a process sweeps once at a time).
    const other = SCALE_OUT ? await start(FIXTURES, database) : undefined;
    const sweepers = other !== undefined ? [t.server, other.server] : [t.server, t.server];
    try {
      const ids = await Promise.all(Array.from({ length: 240 }, () => t.client.threads.create({ ttl: { strategy: "delete", ttl: 1 } }).then((thread) => thread.thread_id)));
      const keep = (await t.client.threads.create({ ttl: KEEP_LATEST(1) })).thread_id;
      const busy = await t.client.threads.create({ ttl: { ttl: 1 } });
      const name = `g-${randomUUID()}`;
      const g = gate(name);
      const run = await t.client.runs.create(busy.thread_id, "gated", { input: human(`gate:${name}`) });
      await expect.poll(() => g.entered).toBe(1);
      const at = Date.now() + 10 * MINUTE;
      const results = await Promise.all(sweepers.map((server) => server.sweepThreads(at)));
      const deleted = results.flatMap((result) => result.deleted);
      const pruned = results.flatMap((result) => result.pruned);
      expect(new Set(deleted).size).toBe(deleted.length);
      expect(deleted).toEqual(expect.arrayContaining(ids));
      expect(pruned.filter((id) => id === keep)).toHaveLength(1);
      expect(deleted).not.toContain(busy.thread_id);
      expect(await t.client.threads.search({ ids, limit: 1000 })).toEqual([]);
      g.open();
      await t.client.runs.join(busy.thread_id, run.run_id);
      expect((await t.client.runs.get(busy.thread_id, run.run_id)).status).toBe("success");
    } finally {
      await other?.close();
    }
  });
});

describe("checkpointer.ttl in langgraph.json", () => {
  let database: TestDatabase | undefined;
  let t: Started;

  beforeAll(async () => {
    database = SCALE_OUT ? await freshDatabase("thread_ttl_default") : undefined;
    t = await start(TTL_PROJECT, database);
  });
  afterAll(async () => {
    await t?.close();
    await database?.drop();
  });

  it("gives its default to threads created without a TTL, by POST /threads or by a run, and a thread's own TTL wins", async () => {
    const created = await t.client.threads.create();
    expect((await t.client.threads.get(created.thread_id, { include: ["ttl"] })) as unknown).toMatchObject({ ttl: { strategy: "keep_latest", ttl_minutes: 30 } });
    const own = await t.client.threads.create({ ttl: { strategy: "delete", ttl: 2 } });
    expect((await t.client.threads.get(own.thread_id, { include: ["ttl"] })) as unknown).toMatchObject({ ttl: { strategy: "delete", ttl_minutes: 2 } });
    const threadId = randomUUID();
    await t.client.runs.wait(threadId, "echo", { input: human("new thread"), ifNotExists: "create" });
    expect((await t.client.threads.get(threadId, { include: ["ttl"] })) as unknown).toMatchObject({ ttl: { strategy: "keep_latest", ttl_minutes: 30 } });
    const expiry = await expiresAt(t.client, threadId);
    const swept = await t.server.sweepThreads(expiry);
    expect(swept.pruned).toContain(threadId);
    expect((await t.client.threads.get(threadId)).thread_id).toBe(threadId);
  });
});

describe("checkpointer.ttl settings Baton cannot fully honour", () => {
  it("are logged at start: a strategy without default_ttl, and TTLs with the project's own saver", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "baton-ttl-"));
    const lines: string[] = [];
    const config = loadConfig({ port: 0, dataDir, configPath: OWN_SAVER_PROJECT, shutdownGraceMs: 0, executionThreads: EXECUTION_THREADS }, {});
    const logger = createLogger({ level: "warn", format: "json", write: (line) => lines.push(line) });
    const server = await createServer(config, loadProject(config.configPath, {}), logger);
    try {
      const warned = lines.map((line) => JSON.parse(line) as { level: string; msg: string; strategy?: string }).filter((entry) => entry.level === "warn");
      expect(warned.map((entry) => entry.msg)).toEqual(expect.arrayContaining(["threads:ttl-own-checkpointer", "threads:ttl-strategy-unused"]));
      expect(warned.find((entry) => entry.msg === "threads:ttl-strategy-unused")?.strategy).toBe("keep_latest");
      // The strategy alone gives threads no TTL.
      const client = new Client({ apiUrl: server.url });
      const thread = await client.threads.create();
      expect(await client.threads.get(thread.thread_id, { include: ["ttl"] })).not.toHaveProperty("ttl");
    } finally {
      await server.close(0);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
