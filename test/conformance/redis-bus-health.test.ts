/**
 * The Redis bus's health and its readers' reads: a backlog longer than one
 * read batch is read at once (not one batch per idle poll); while the bus
 * is healthy a quiet reader does not ask the durable record at every idle
 * poll; the bus says it is not healthy while Redis is away, and a reader
 * whose end marker was lost with Redis's data ends once the record says the
 * run is over.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisEventBus } from "../../src/backends/redis/event-bus.ts";
import type { RunEvent } from "../../src/core/types.ts";
import { startPrivateRedis, type PrivateRedis } from "../helpers/private-services.ts";
import { REDIS_URL, until } from "../helpers/server.ts";

describe("Redis bus reads", () => {
  it("a reader gets a backlog longer than one read batch without waiting for a notification", async () => {
    // Idle polls far beyond the test's timeout: only reading on can deliver the rest.
    const bus = new RedisEventBus({ url: REDIS_URL, prefix: `baton-test:${randomUUID()}:`, maxLen: 10_000, idlePollMs: 600_000 });
    try {
      await bus.ready();
      const runId = randomUUID();
      for (let i = 0; i < 300; i++) bus.publish(runId, "values", { i });
      bus.end(runId, 60_000);
      // Ordered after the publishes on the same connection: their notifications went out before anyone listened.
      expect(await bus.has(runId)).toBe(true);
      const events: RunEvent[] = [];
      for await (const event of bus.subscribe(runId, undefined, AbortSignal.timeout(20_000))) events.push(event);
      expect(events.map((e) => (e.data as { i: number }).i)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    } finally {
      await bus.close();
    }
  });
});

describe("Redis bus health", () => {
  let redis: PrivateRedis;
  let bus: RedisEventBus;
  let finished = false;
  let finishedChecks = 0;
  const prefix = `baton-test:${randomUUID()}:`;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    bus = new RedisEventBus({
      url: redis.url,
      prefix,
      maxLen: 1_000,
      idlePollMs: 20,
      isFinished: async () => {
        finishedChecks += 1;
        return finished;
      },
    });
    await bus.ready();
  }, 30_000);

  afterAll(async () => {
    await bus?.close();
    await redis?.kill();
  });

  it("a quiet reader on a healthy bus does not ask the record at every idle poll; after Redis restarts empty it ends once the record says the run is over", async () => {
    // Healthy once both connections are up (the commands connection may still be connecting when `ready` resolves).
    await until(async () => (bus.healthy() ? true : undefined), "the bus to be healthy");
    const runId = randomUUID();
    const events: unknown[] = [];
    let read!: () => void;
    let next = new Promise<void>((resolve) => (read = resolve));
    const reader = (async () => {
      for await (const event of bus.subscribe(runId, undefined, AbortSignal.timeout(25_000))) {
        events.push(event.data);
        read();
      }
    })();
    // Appended without a notification: each is read at an idle poll.
    const direct = new Redis(redis.url);
    try {
      for (let i = 0; i < 5; i++) {
        await direct.xadd(`${prefix}run:${runId}`, "*", "e", "values", "d", JSON.stringify({ i }));
        await next;
        next = new Promise<void>((resolve) => (read = resolve));
      }
    } finally {
      direct.disconnect();
    }
    expect(events).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })));
    expect(finishedChecks).toBe(0);

    // The run ends while Redis is away, and its end marker is lost (never written here).
    await redis.kill();
    await until(async () => (bus.healthy() ? undefined : true), "the bus to say it is not healthy");
    finished = true;
    await redis.start();
    await reader;
    expect(finishedChecks).toBeGreaterThan(0);
    await until(async () => (bus.healthy() ? true : undefined), "the bus to be healthy again");
  }, 30_000);
});
