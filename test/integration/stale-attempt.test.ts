/**
 * An attempt that lost its lease but still runs (its worker was cut off from
 * the database, or paused, long enough for the run to be swept and claimed
 * again) must not put its events into the run's stream once the new attempt
 * has started (C8). Two worker pools on one real SQLite backend and one event
 * bus; the first pool's lease is expired by hand, as a sweeper finds it after
 * `leaseMs`. Both attempts then wait on the same gate, and the test opens it.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { MemoryEventBus } from "../../src/backends/memory/event-bus.ts";
import { createSqliteBackend } from "../../src/backends/sqlite/index.ts";
import { systemClock } from "../../src/core/clock.ts";
import { GraphRegistry } from "../../src/core/graphs.ts";
import { createLogger } from "../../src/core/logger.ts";
import type { RunEvent } from "../../src/core/types.ts";
import { newRun } from "../../src/testing/index.ts";
import { sweepExpired, WorkerPool, type WorkerPoolOptions } from "../../src/worker/worker-pool.ts";
import { gate } from "../fixtures/graphs/graphs.ts";
import { until } from "../helpers/server.ts";

const backend = createSqliteBackend({ path: ":memory:", busyTimeoutMs: 1_000, clock: systemClock });
const bus = new MemoryEventBus();
const logger = createLogger({ level: "error", format: "json", write: () => {} });
const registry = new GraphRegistry([{ graphId: "gated", spec: "./graphs.ts:gated" }], join(import.meta.dirname, "../fixtures/graphs"));
// Nothing renews or sweeps on its own during the test: the test decides.
const options: WorkerPoolOptions = {
  concurrency: 4,
  leaseMs: 60_000,
  leaseRenewMs: 60_000,
  sweepIntervalMs: 60_000,
  pollIntervalMs: 60_000,
  maxAttempts: 3,
  runTimeoutMs: 60_000,
  maxRunningPerUser: 3,
  resumableRetentionMs: 60_000,
};
const deps = { queue: backend.runs, bus, registry, assistants: backend.assistants, checkpointer: backend.checkpointer, store: backend.store, logger };
const first = new WorkerPool(deps, options);
const second = new WorkerPool(deps, options);

afterAll(async () => {
  await first.close(0);
  await second.close(0);
  await backend.close();
});

it("the events of an attempt whose lease was taken never follow the new attempt's (C8)", async () => {
  await registry.loadAll();
  const name = `stale-${randomUUID()}`;
  const g = gate(name);
  const run = newRun(randomUUID(), randomUUID());
  await backend.runs.create({
    ...run,
    graph_id: "gated",
    kwargs: { ...run.kwargs, input: { messages: [{ role: "user", content: `gate:${name}` }] }, stream_mode: ["values"], stream_resumable: true },
  });
  const events: RunEvent[] = [];
  const reading = (async () => {
    for await (const event of bus.subscribe(run.run_id, undefined, AbortSignal.timeout(20_000))) events.push(event);
  })();

  first.start();
  await until(async () => (g.entered >= 1 ? true : undefined), "attempt 1 at the gate");
  // Attempt 1's lease runs out (its worker cannot renew it); a sweeper requeues the run.
  backend.runs.expireOwner(first.owner);
  expect(await sweepExpired(deps, options)).toBe(true);
  second.start();
  await until(async () => (g.entered >= 2 ? true : undefined), "attempt 2 at the gate");

  // Both attempts go on: attempt 1 did not notice it lost the run.
  g.open();
  await reading;

  const secondStart = events.findIndex((e) => e.event === "metadata" && (e.data as { attempt: number }).attempt === 2);
  expect(secondStart).toBeGreaterThan(0);
  const afterSecond = events.slice(secondStart + 1);
  const replies = afterSecond.filter((e) => e.event === "values" && JSON.stringify(e.data).includes(`echo: gate:${name}`));
  // Attempt 2's own reply once, and nothing of attempt 1's after attempt 2 began.
  expect(replies).toHaveLength(1);
  expect(afterSecond.map((e) => e.event)).toEqual(["values", "values", "__final__"]);
  expect((await backend.runs.get(run.run_id))?.status).toBe("success");
});
