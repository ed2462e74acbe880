/**
 * Runs that end without a worker finishing them (abandoned after their last
 * attempt, or cancelled and their worker died; timed out in the queue) get
 * their end on their thread's log, so a thread stream (and a protocol v2
 * client) never waits on a run that will not run. On each backend with its
 * bus: SQLite with the in-memory bus, Postgres with the Redis bus. The
 * clock is the test's; nothing sleeps.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryEventBus } from "../../src/backends/memory/event-bus.ts";
import { createPostgresBackend } from "../../src/backends/postgres/index.ts";
import { RedisEventBus } from "../../src/backends/redis/event-bus.ts";
import { createSqliteBackend } from "../../src/backends/sqlite/index.ts";
import { createLogger } from "../../src/core/logger.ts";
import type { EventBus } from "../../src/core/ports.ts";
import { protocolEvents } from "../../src/core/protocol.ts";
import { threadStreamEvent } from "../../src/core/thread-stream.ts";
import type { ThreadEvent } from "../../src/core/types.ts";
import { ManualClock, newRun } from "../../src/testing/index.ts";
import { expireOverdue, sweepExpired } from "../../src/worker/worker-pool.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { REDIS_URL } from "../helpers/server.ts";

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase("runends");
});
afterAll(async () => {
  await db.drop();
});

const logger = createLogger({ level: "error", format: "json", write: () => undefined });

/** The thread's log from its oldest entry until the entry `done` accepts. */
async function readLog(bus: EventBus, threadId: string, done: (entry: ThreadEvent) => boolean): Promise<ThreadEvent[]> {
  const abort = new AbortController();
  const entries: ThreadEvent[] = [];
  for await (const entry of bus.subscribeThread(threadId, "-", abort.signal)) {
    entries.push(entry);
    if (done(entry)) abort.abort();
  }
  return entries;
}

const isFinal = (entry: ThreadEvent) => entry.event === "__final__";

describe.each([
  {
    name: "sqlite with the memory bus",
    open: async (clock: ManualClock) => ({ backend: createSqliteBackend({ path: ":memory:", busyTimeoutMs: 0, clock }), bus: new MemoryEventBus() }),
  },
  {
    name: "postgres with the redis bus",
    open: async (clock: ManualClock) => ({
      backend: await createPostgresBackend({ url: db.url, poolSize: 2, clock, migrate: true }),
      bus: new RedisEventBus({ url: REDIS_URL, prefix: `baton-test:${randomUUID()}:`, maxLen: 1_000 }),
    }),
  },
])("run ends on the thread's log: $name", ({ open }) => {
  it("a run abandoned after its last attempt ends on its thread's stream as an error, and on the protocol as failed", async () => {
    const clock = new ManualClock();
    const { backend, bus } = await open(clock);
    try {
      const thread = `t-${randomUUID()}`;
      const run = `r-${randomUUID()}`;
      await backend.runs.create(newRun(thread, run));
      await backend.runs.claim("w1", 1_000);
      clock.advance(2_000); // the worker's lease runs out; it was the last attempt
      expect(await sweepExpired({ queue: backend.runs, bus, logger }, { maxAttempts: 1, resumableRetentionMs: 0 })).toBe(true);
      const entries = await readLog(bus, thread, isFinal);
      const end = threadStreamEvent(entries.at(-1)!);
      expect(end).toMatchObject({ event: "metadata", data: { run_id: run, status: "run_done", run_status: "error" } });
      const [lifecycle] = protocolEvents(entries.at(-1)!, 0);
      expect(lifecycle).toMatchObject({ method: "lifecycle", params: { data: { event: "failed", run_id: run, error: expect.stringMatching(/max attempts 1/) } } });
    } finally {
      await bus.close();
      await backend.close();
    }
  });

  it("a cancelled run whose worker died, and a rolled back one, end on their threads' streams", async () => {
    const clock = new ManualClock();
    const { backend, bus } = await open(clock);
    try {
      const [interrupted, rolledBack] = [`t-${randomUUID()}`, `t-${randomUUID()}`];
      await backend.runs.create(newRun(interrupted, "r-int"));
      await backend.runs.create(newRun(rolledBack, "r-rb"));
      await backend.runs.claim("w1", 1_000);
      await backend.runs.claim("w1", 1_000);
      await backend.runs.cancel(["r-int"], "interrupt");
      await backend.runs.cancel(["r-rb"], "rollback");
      clock.advance(2_000); // the worker died without seeing the cancels
      await sweepExpired({ queue: backend.runs, bus, logger }, { maxAttempts: 3, resumableRetentionMs: 0 });
      expect(threadStreamEvent((await readLog(bus, interrupted, isFinal)).at(-1)!)?.data).toMatchObject({ run_id: "r-int", run_status: "interrupted" });
      expect(threadStreamEvent((await readLog(bus, rolledBack, isFinal)).at(-1)!)?.data).toMatchObject({ run_id: "r-rb", run_status: "rolled_back" });
    } finally {
      await bus.close();
      await backend.close();
    }
  });

  it("a run that timed out in the queue ends on its thread's stream, after its error", async () => {
    const clock = new ManualClock();
    const { backend, bus } = await open(clock);
    try {
      const thread = `t-${randomUUID()}`;
      await backend.runs.create(newRun(thread, "r-late"));
      clock.advance(2_000);
      expect(await expireOverdue({ queue: backend.runs, bus, logger }, 1_000, 0)).toBe(true);
      const entries = await readLog(bus, thread, isFinal);
      expect(entries.map((e) => e.event)).toEqual(["error", "__final__"]);
      expect(threadStreamEvent(entries[1]!)?.data).toMatchObject({ run_id: "r-late", status: "run_done", run_status: "timeout" });
    } finally {
      await bus.close();
      await backend.close();
    }
  });
});
