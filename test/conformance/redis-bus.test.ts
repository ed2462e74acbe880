/**
 * The Redis event bus against a real Redis: ordered, exact delivery with
 * Last-Event-ID resume, and a clear notice (never a silent gap) when a run's
 * stream was trimmed past where a reader starts.
 */
import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { RedisEventBus } from "../../src/backends/redis/event-bus.ts";
import type { RunEvent } from "../../src/core/types.ts";
import { REDIS_URL } from "../helpers/server.ts";

const bus = new RedisEventBus({ url: REDIS_URL, prefix: `baton-test:${randomUUID()}:`, maxLen: 100 });
afterAll(async () => {
  await bus.close();
});

async function read(runId: string, after?: string): Promise<RunEvent[]> {
  const events: RunEvent[] = [];
  for await (const event of bus.subscribe(runId, after, AbortSignal.timeout(10_000))) events.push(event);
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
