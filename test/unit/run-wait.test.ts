/**
 * RunWaiter.waitFinal (what RunService.waitFinal answers with) against a real queue (SQLite in memory) and the
 * in-process bus: while the bus is healthy, waiting clients trust it and
 * read the run's record once, then only every safety poll (by the clock);
 * while it is down, they read the record every tick, so a run whose final
 * event was lost is still answered. Reads are counted through a wrapped
 * queue; progress is awaited by counting ticks (the bus is asked whether it
 * is healthy once per tick), never by timing.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryEventBus } from "../../src/backends/memory/event-bus.ts";
import { createSqliteBackend, type SqliteBackend } from "../../src/backends/sqlite/index.ts";
import type { RunQueue } from "../../src/core/ports.ts";
import { RunWaiter } from "../../src/core/run-wait.ts";
import { ManualClock, newRun, succeeded } from "../../src/testing/index.ts";

/** Resolves promises once a condition holds, checked whenever something it depends on changes. */
class Conditions {
  readonly #pending = new Set<{ holds: () => boolean; resolve: () => void }>();
  until(holds: () => boolean): Promise<void> {
    if (holds()) return Promise.resolve();
    return new Promise((resolve) => this.#pending.add({ holds, resolve }));
  }
  changed(): void {
    for (const entry of this.#pending) {
      if (!entry.holds()) continue;
      this.#pending.delete(entry);
      entry.resolve();
    }
  }
}

/** The in-process bus, with an outage switch: while down it says so, and what is published is lost. */
class FlakyBus extends MemoryEventBus {
  up = true;
  checks = 0;
  constructor(private readonly conditions: Conditions) {
    super();
  }
  override healthy(): boolean {
    this.checks += 1;
    this.conditions.changed();
    return this.up;
  }
  override publish(runId: string, event: string, data: unknown, attempt?: number): void {
    if (this.up) super.publish(runId, event, data, attempt);
  }
  override end(runId: string, retainMs: number): void {
    if (this.up) super.end(runId, retainMs);
  }
}

/** The queue, counting reads of a run's record. */
function counted(queue: RunQueue, onRead: () => void): RunQueue {
  return new Proxy(queue, {
    get(target, property, receiver) {
      if (property === "get") {
        return (...args: Parameters<RunQueue["get"]>) => {
          onRead();
          return target.get(...args);
        };
      }
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

let clock: ManualClock;
let backend: SqliteBackend;
let conditions: Conditions;
let bus: FlakyBus;
let reads: number;
let service: RunWaiter;

beforeEach(() => {
  clock = new ManualClock();
  backend = createSqliteBackend({ path: ":memory:", busyTimeoutMs: 0, clock });
  conditions = new Conditions();
  bus = new FlakyBus(conditions);
  reads = 0;
  const queue = counted(backend.runs, () => {
    reads += 1;
    conditions.changed();
  });
  service = new RunWaiter({
    queue,
    bus,
    clock,
    // Ticks as fast as the event loop allows: the test counts them, it does not time them.
    finalPollMs: 1,
    safetyPollMs: 30_000,
  });
});

afterEach(async () => {
  await bus.close();
  await backend.close();
});

/** A running run, with the fence that finishes it. */
async function runningRun(n: number) {
  await backend.runs.create(newRun(`thread-${n}`, `run-${n}`));
  const run = await backend.runs.claim("worker", 60_000);
  if (run === null) throw new Error("nothing to claim");
  return { runId: run.run_id, fence: { owner: "worker", attempt: run.attempt } };
}

describe("waiting for a run's end", () => {
  it("with a healthy bus, many waiting clients read the record once each however many ticks pass, and the bus answers", async () => {
    const clients = 25;
    const runs = [];
    for (let n = 0; n < clients; n++) runs.push(await runningRun(n));
    const waits = runs.map(({ runId }) => service.waitFinal(runId, new AbortController().signal));
    // Every client has ticked many times.
    await conditions.until(() => bus.checks >= clients * 20);
    expect(reads).toBe(clients);
    for (const { runId, fence } of runs) {
      await backend.runs.finish(runId, fence, succeeded);
      bus.publish(runId, "__final__", { status: "success", output: { from: "bus", runId } });
      bus.end(runId, 0);
    }
    const answers = await Promise.all(waits);
    expect(answers).toEqual(runs.map(({ runId }) => ({ status: "success", output: { from: "bus", runId } })));
    expect(reads).toBe(clients);
  });

  it("with a healthy bus, a final event lost without an outage is answered from the record at the safety poll", async () => {
    const { runId, fence } = await runningRun(0);
    const wait = service.waitFinal(runId, new AbortController().signal);
    await conditions.until(() => bus.checks >= 20);
    expect(reads).toBe(1);
    // Recorded, but the worker died before publishing.
    await backend.runs.finish(runId, fence, succeeded);
    clock.advance(29_999);
    const checks = bus.checks;
    await conditions.until(() => bus.checks >= checks + 20);
    expect(reads).toBe(1);
    clock.advance(1);
    expect(await wait).toEqual({ status: "success", output: succeeded.output });
    expect(reads).toBe(2);
  });

  it("while the bus is down, waits read the record every tick, and a run whose final event was lost is answered", async () => {
    const { runId, fence } = await runningRun(0);
    bus.up = false;
    const wait = service.waitFinal(runId, new AbortController().signal);
    await conditions.until(() => reads >= 5);
    await backend.runs.finish(runId, fence, succeeded);
    // Lost: the bus is down.
    bus.publish(runId, "__final__", { status: "success", output: { from: "bus" } });
    bus.end(runId, 0);
    expect(await wait).toEqual({ status: "success", output: succeeded.output });
  });

  it("an outage of one tick is enough for a read: a final event lost in it is answered", async () => {
    const { runId, fence } = await runningRun(0);
    const wait = service.waitFinal(runId, new AbortController().signal);
    await conditions.until(() => bus.checks >= 5);
    expect(reads).toBe(1);
    await backend.runs.finish(runId, fence, succeeded);
    bus.up = false;
    bus.publish(runId, "__final__", { status: "success", output: { from: "bus" } });
    const checks = bus.checks;
    await conditions.until(() => bus.checks > checks);
    bus.up = true;
    expect(await wait).toEqual({ status: "success", output: succeeded.output });
    expect(reads).toBe(2);
  });

  it("a client that goes away ends its wait without further reads", async () => {
    const { runId } = await runningRun(0);
    const controller = new AbortController();
    const wait = service.waitFinal(runId, controller.signal);
    await conditions.until(() => bus.checks >= 3);
    controller.abort();
    await expect(wait).rejects.toThrow(/went away/);
    expect(reads).toBe(1);
  });
});
