/**
 * The event buses. The Redis bus against a real Redis: ordered, exact
 * delivery with Last-Event-ID resume, and a clear notice (never a silent
 * gap) when a run's stream was trimmed past where a reader starts. Both
 * buses: a stale attempt's events never reach a run's stream.
 */
import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { MemoryEventBus } from "../../src/backends/memory/event-bus.ts";
import { Redis } from "ioredis";
import { RedisEventBus } from "../../src/backends/redis/event-bus.ts";
import type { EventBus } from "../../src/core/ports.ts";
import type { RunEvent, ThreadEvent } from "../../src/core/types.ts";
import { REDIS_URL } from "../helpers/server.ts";

const prefix = `baton-test:${randomUUID()}:`;
const bus = new RedisEventBus({ url: REDIS_URL, prefix, maxLen: 100 });
const redis = new Redis(REDIS_URL);
afterAll(async () => {
  await bus.close();
  redis.disconnect();
});

async function read(runId: string, after?: string, from: EventBus = bus): Promise<RunEvent[]> {
  const events: RunEvent[] = [];
  for await (const event of from.subscribe(runId, after, AbortSignal.timeout(10_000))) events.push(event);
  return events;
}

describe("Redis event bus", () => {
  it("delivers every event in order, and the exact rest after a Last-Event-ID", async () => {
    const runId = randomUUID();
    for (let i = 0; i < 50; i++) bus.publish(runId, "values", { i });
    bus.end(runId, 60_000);
    const all = await read(runId);
    expect(all.map((e) => (e.data as { i: number }).i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const rest = await read(runId, all[19]!.id);
    expect(rest.map((e) => e.id)).toEqual(all.slice(20).map((e) => e.id));
  });

  it("says so when the stream was trimmed before where a reader starts, and not otherwise", async () => {
    const runId = randomUUID();
    for (let i = 0; i < 1_000; i++) bus.publish(runId, "messages", { i });
    bus.end(runId, 60_000);
    const fromStart = await read(runId);
    expect(fromStart[0]).toMatchObject({ event: "error", data: { error: "StreamTruncated" } });
    const kept = fromStart.slice(1).map((e) => (e.data as { i: number }).i);
    // The newest events, in order, ending with the last one published.
    expect(kept.at(-1)).toBe(999);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, k) => 1_000 - kept.length + k));
    // A reader resuming inside the kept part gets no notice.
    const resumed = await read(runId, fromStart[10]!.id);
    expect(resumed.map((e) => e.event).includes("error")).toBe(false);
    expect(resumed.map((e) => e.id)).toEqual(fromStart.slice(11).map((e) => e.id));
  });
});

describe.each([
  ["memory", new MemoryEventBus()],
  ["Redis", bus],
] as const)("%s event bus: attempts", (_name, target) => {
  it("drops the events of an attempt once a later attempt has published (C8)", async () => {
    const runId = randomUUID();
    target.publish(runId, "values", { from: "attempt 1", i: 0 }, 1);
    target.publish(runId, "values", { from: "attempt 1", i: 1 }, 1);
    // Attempt 2 took the run over (attempt 1's lease expired); attempt 1 has not noticed yet.
    target.publish(runId, "metadata", { from: "attempt 2", i: 2 }, 2);
    target.publish(runId, "values", { from: "attempt 1", i: 3 }, 1);
    target.publish(runId, "error", { from: "attempt 1", i: 4 }, 1);
    target.publish(runId, "values", { from: "attempt 2", i: 5 }, 2);
    // Events published outside any attempt (the API cancelling a pending run) are never dropped.
    target.publish(runId, "values", { from: "api", i: 6 });
    target.publish(runId, "values", { from: "attempt 1", i: 7 }, 1);
    target.end(runId, 60_000);
    const events = await read(runId, undefined, target);
    expect(events.map((e) => e.data)).toEqual([
      { from: "attempt 1", i: 0 },
      { from: "attempt 1", i: 1 },
      { from: "attempt 2", i: 2 },
      { from: "attempt 2", i: 5 },
      { from: "api", i: 6 },
    ]);
  });

  it("keeps an ended stream ended: later events, of any attempt or none, are dropped", async () => {
    const runId = randomUUID();
    target.publish(runId, "values", { i: 0 }, 1);
    target.end(runId, 60_000);
    target.publish(runId, "values", { i: 1 }, 1);
    target.publish(runId, "values", { i: 2 }, 2);
    target.publish(runId, "values", { i: 3 });
    // A joiner of the retained stream reads it to its end, and nothing published after.
    expect((await read(runId, undefined, target)).map((e) => e.data)).toEqual([{ i: 0 }]);
  });
});

describe("Redis event bus: an ended stream", () => {
  it("keeps its short expiry when a stale attempt publishes after the end", async () => {
    const runId = randomUUID();
    bus.publish(runId, "values", { i: 0 }, 1);
    bus.end(runId, 0);
    bus.publish(runId, "values", { i: 1 }, 1);
    await bus.has(runId); // a round trip on the bus's connection: everything above has landed
    const streamTtl = await redis.pttl(`${prefix}run:${runId}`);
    expect(streamTtl).toBeGreaterThan(0);
    expect(streamTtl).toBeLessThanOrEqual(60_000);
    expect(await redis.xlen(`${prefix}run:${runId}`)).toBe(2); // the event and the end marker
  });
});

/** Reads a thread's log from `after` until `count` events came (a thread's log never ends by itself). */
async function readThread(target: EventBus, threadId: string, after: string | undefined, count: number): Promise<ThreadEvent[]> {
  const events: ThreadEvent[] = [];
  const stop = new AbortController();
  const timeout = setTimeout(() => stop.abort(), 10_000);
  try {
    for await (const event of target.subscribeThread(threadId, after, stop.signal)) {
      events.push(event);
      if (events.length >= count) break;
    }
  } finally {
    clearTimeout(timeout);
  }
  return events;
}

describe.each([
  ["memory", () => new MemoryEventBus({ threadMaxEvents: 20 })],
  ["Redis", () => new RedisEventBus({ url: REDIS_URL, prefix, maxLen: 100, threadMaxLen: 20 })],
] as const)("%s event bus: thread logs", (_name, make) => {
  const target = make();
  afterAll(() => target.close());

  it("holds the events of every run of the thread, in order, each with its run; other threads' and unbound events stay out", async () => {
    const threadId = randomUUID();
    const [a, b] = [randomUUID(), randomUUID()];
    target.publish(a, "metadata", { i: 0 }, 1, threadId);
    target.publish(a, "values", { i: 1 }, 1, threadId);
    target.publish(randomUUID(), "values", { other: true }, 1, randomUUID());
    target.publish(a, "values", { unbound: true }, 1);
    target.publish(a, "__final__", { status: "success" }, 1, threadId);
    target.end(a, 0);
    target.publish(b, "metadata", { i: 2 }, 1, threadId);
    const events = await readThread(target, threadId, "-", 4);
    expect(events.map((e) => [e.run_id, e.event, e.data])).toEqual([
      [a, "metadata", { i: 0 }],
      [a, "values", { i: 1 }],
      [a, "__final__", { status: "success" }],
      [b, "metadata", { i: 2 }],
    ]);
    // The exact rest after any of them, and the thread log's own ids, increasing.
    expect((await readThread(target, threadId, events[1]!.id, 2)).map((e) => e.id)).toEqual(events.slice(2).map((e) => e.id));
    expect([...events.map((e) => e.id)].sort(compareIds)).toEqual(events.map((e) => e.id));
  });

  it("drops a stale attempt's events as the run's stream does", async () => {
    const threadId = randomUUID();
    const runId = randomUUID();
    target.publish(runId, "values", { attempt: 1 }, 1, threadId);
    target.publish(runId, "metadata", { attempt: 2 }, 2, threadId);
    target.publish(runId, "values", { stale: true }, 1, threadId);
    target.publish(runId, "values", { attempt: 2 }, 2, threadId);
    expect((await readThread(target, threadId, "-", 3)).map((e) => e.data)).toEqual([{ attempt: 1 }, { attempt: 2 }, { attempt: 2 }]);
  });

  it("keeps a bounded number of events and says so to a reader starting before the oldest kept", async () => {
    const threadId = randomUUID();
    const runId = randomUUID();
    for (let i = 0; i < 200; i++) target.publish(runId, "values", { i }, 1, threadId);
    target.end(runId, 0);
    const first = await readThread(target, threadId, "-", 2);
    expect(first[0]).toMatchObject({ event: "error", data: { error: "StreamTruncated" } });
    const kept = (first[1]!.data as { i: number }).i;
    expect(kept).toBeGreaterThan(100);
    const rest = await readThread(target, threadId, first[1]!.id, 199 - kept);
    expect(rest.map((e) => (e.data as { i: number }).i)).toEqual(Array.from({ length: 199 - kept }, (_, k) => kept + 1 + k));
  });
});

describe("memory event bus: thread logs from now", () => {
  it("a reader without an id gets what is published after it started, live", async () => {
    const target = new MemoryEventBus();
    const threadId = randomUUID();
    const runId = randomUUID();
    target.publish(runId, "values", { before: true }, 1, threadId);
    const stop = new AbortController();
    const reader = target.subscribeThread(threadId, undefined, stop.signal)[Symbol.asyncIterator]();
    const next = reader.next();
    target.publish(runId, "values", { after: true }, 1, threadId);
    expect((await next).value).toMatchObject({ run_id: runId, data: { after: true } });
    stop.abort();
    await target.close();
  });
});

function compareIds(x: string, y: string): number {
  const [xm = 0, xn = 0] = x.split("-").map(Number);
  const [ym = 0, yn = 0] = y.split("-").map(Number);
  return xm - ym || xn - yn;
}
