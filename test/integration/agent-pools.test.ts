/**
 * Agent pools (C5 for factory graphs, docs/agent-pools.md) through the API:
 * the `pooled` fixture's instances report their id and whether another run
 * was inside them at the same time, so the assertions are on what the runs
 * themselves saw.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gate } from "../fixtures/graphs/graphs.ts";
import { human, startServer, type TestServer } from "../helpers/server.ts";

type Report = { instance: string; shared: boolean; flavor: string };
type Out = { messages: { content: string }[] };

let t: TestServer;
beforeAll(async () => {
  // 20 runs of one user must run at once: raise the per-user running cap (default 3).
  t = await startServer({ maxRunningPerUser: 20, agentPoolPerUser: 2 });
});
afterAll(async () => {
  await t.close();
});

const reportOf = (out: unknown) => JSON.parse((out as Out).messages.at(-1)!.content) as Report;

/** Runs `count` runs of `owner` at once, all inside the graph together, and returns what each reported. */
async function concurrentRuns(owner: string, count: number): Promise<Report[]> {
  const name = `pool-${crypto.randomUUID()}`;
  const g = gate(name);
  const runs = await Promise.all(
    Array.from({ length: count }, async () => {
      const thread = await t.client.threads.create();
      return t.client.runs.create(thread.thread_id, "pooled", { input: human(`gate:${name}`), metadata: { owner } });
    }),
  );
  // Every run is inside an instance before any may leave.
  await expect.poll(() => g.entered, { timeout: 20_000 }).toBe(count);
  g.open();
  return Promise.all(runs.map(async (r) => reportOf(await t.client.runs.join(r.thread_id, r.run_id))));
}

async function oneRun(owner: string, text: string, configurable: Record<string, unknown> = {}): Promise<unknown> {
  const thread = await t.client.threads.create();
  return t.client.runs.wait(thread.thread_id, "pooled", { input: human(text), metadata: { owner }, config: { configurable } });
}

describe("agent pools", () => {
  it("never shares an instance between 20 concurrent runs of one user, and keeps at most 2 for reuse", async () => {
    const first = await concurrentRuns("ada", 20);
    expect(first.filter((r) => r.shared)).toEqual([]);
    // All 20 ran at once, so 20 instances: two pooled, the others transient.
    const firstIds = new Set(first.map((r) => r.instance));
    expect(firstIds.size).toBe(20);

    const second = await concurrentRuns("ada", 20);
    expect(second.filter((r) => r.shared)).toEqual([]);
    const secondIds = new Set(second.map((r) => r.instance));
    expect(secondIds.size).toBe(20);
    // Exactly the two kept instances came back; the transient ones were dropped.
    expect([...secondIds].filter((id) => firstIds.has(id))).toHaveLength(2);
  });

  it("reuses an instance run after run, per user and per config", async () => {
    const a = reportOf(await oneRun("bea", "hi"));
    const b = reportOf(await oneRun("bea", "hi again"));
    expect(b.instance).toBe(a.instance);
    // Another user, or another config, never gets bea's instance.
    const other = reportOf(await oneRun("cyd", "hi"));
    expect(other.instance).not.toBe(a.instance);
    const flavored = reportOf(await oneRun("bea", "hi", { flavor: "mint" }));
    expect(flavored.flavor).toBe("mint");
    expect(flavored.instance).not.toBe(a.instance);
    expect(reportOf(await oneRun("bea", "hi", { flavor: "mint" })).instance).toBe(flavored.instance);
  });

  it("drops an instance whose run failed instead of returning it to the pool", async () => {
    const kept = reportOf(await oneRun("dee", "hi")).instance;
    // The failed run held the kept instance (the only idle one of dee's config)...
    await expect(oneRun("dee", "fail please")).rejects.toThrow(`failed on purpose in instance ${kept}`);
    // ...which is gone: the next run gets a new one, and keeps it.
    const next = reportOf(await oneRun("dee", "hi")).instance;
    expect(next).not.toBe(kept);
    expect(reportOf(await oneRun("dee", "hi")).instance).toBe(next);
  });

  it("drops an instance whose run was cancelled", async () => {
    const kept = reportOf(await oneRun("eve", "hi")).instance;
    const name = `pool-${crypto.randomUUID()}`;
    const g = gate(name);
    const thread = await t.client.threads.create();
    const run = await t.client.runs.create(thread.thread_id, "pooled", { input: human(`gate:${name}`), metadata: { owner: "eve" } });
    await expect.poll(() => g.entered).toBe(1);
    await t.client.runs.cancel(thread.thread_id, run.run_id, true);
    expect((await t.client.runs.get(thread.thread_id, run.run_id)).status).toBe("interrupted");
    const next = reportOf(await oneRun("eve", "hi")).instance;
    expect(next).not.toBe(kept);
  });
});
