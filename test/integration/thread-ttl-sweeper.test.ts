/**
 * The sweeper gives the event loop a turn between batches: on SQLite a
 * batch is one synchronous transaction, and a long sweep must not hold
 * every request behind it.
 */
import { describe, expect, it } from "vitest";
import { createSqliteBackend } from "../../src/backends/sqlite/index.ts";
import { ManualClock } from "../../src/testing/fixtures.ts";
import { createLogger } from "../../src/core/logger.ts";
import { SWEEP_BATCH, ThreadTtlSweeper, threadTtlPolicy } from "../../src/worker/thread-ttl-sweeper.ts";

describe("ThreadTtlSweeper", () => {
  it("sweeps in batches and lets the event loop run between two of them", async () => {
    const clock = new ManualClock();
    const backend = createSqliteBackend({ path: ":memory:", busyTimeoutMs: 0, clock });
    try {
      for (let i = 0; i < 3 * SWEEP_BATCH.sqlite + 5; i++) {
        await backend.threads.create({ thread_id: `t${i}`, metadata: {}, if_exists: "raise", ttl: { strategy: "delete", minutes: 1 } });
      }
      const events: string[] = [];
      const threads = Object.create(backend.threads) as typeof backend.threads;
      threads.sweepExpired = async (atMs, limit) => {
        events.push("batch");
        return backend.threads.sweepExpired(atMs, limit);
      };
      const sweeper = new ThreadTtlSweeper({ threads, logger: createLogger({ level: "error", format: "json", write: () => undefined }), batch: SWEEP_BATCH.sqlite }, threadTtlPolicy(undefined));
      let ticking = true;
      const tick = () => {
        events.push("tick");
        if (ticking) setImmediate(tick);
      };
      setImmediate(tick);
      const swept = await sweeper.sweep(clock.nowMs() + 60_000);
      ticking = false;
      expect(swept.deleted).toHaveLength(3 * SWEEP_BATCH.sqlite + 5);
      const batches = events.map((event, i) => (event === "batch" ? i : -1)).filter((i) => i >= 0);
      expect(batches).toHaveLength(4);
      // Between any two batches, something else ran.
      for (let b = 1; b < batches.length; b++) expect(events.slice(batches[b - 1]! + 1, batches[b])).toContain("tick");
    } finally {
      await backend.close();
    }
  });
});
