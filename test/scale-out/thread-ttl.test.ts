/**
 * The thread TTL sweeper in real processes: one API and two worker
 * processes on one database, each worker sweeping every 300 ms
 * (`sweep_interval_minutes: 0.005`). Threads given a 1.2 s TTL through the
 * API disappear on their own; the workers' logs add up to each thread
 * deleted once and the keep_latest thread pruned once, and the API process
 * (role api) sweeps nothing.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type Cluster, type Member } from "../helpers/cluster.ts";
import { human, until } from "../helpers/server.ts";

const PROJECT = join(import.meta.dirname, "../fixtures/projects/thread-ttl/langgraph.sweep.json");
/** 1.2 s, in minutes. */
const SHORT = 0.02;

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster("thread_ttl_sweep", {}, PROJECT);
});
afterAll(async () => {
  await cluster?.close();
});

/** What a process's `threads:ttl-swept` log lines add up to. */
function swept(member: Member): { deleted: number; pruned: number } {
  const lines = member.baton.output().stderr.split("\n").filter((line) => line.includes('"threads:ttl-swept"'));
  return lines
    .map((line) => JSON.parse(line) as { deleted: number; pruned: number })
    .reduce((sum, line) => ({ deleted: sum.deleted + line.deleted, pruned: sum.pruned + line.pruned }), { deleted: 0, pruned: 0 });
}

describe("thread TTL sweeper across processes", () => {
  it("two workers sweep expired threads on their interval, each thread once; the API process does not sweep", { timeout: 120_000 }, async () => {
    const [api, ...workers] = await Promise.all([cluster.start("api"), cluster.start("worker"), cluster.start("worker")]);
    const keep = await api.client.threads.create({ ttl: { ttl: 60 } });
    await api.client.runs.wait(keep.thread_id, "echo", { input: human("one") });
    await api.client.runs.wait(keep.thread_id, "echo", { input: human("two") });
    expect((await api.client.threads.getHistory(keep.thread_id, { limit: 100 })).length).toBeGreaterThan(1);
    const ids = await Promise.all(Array.from({ length: 60 }, async () => (await api.client.threads.create({ ttl: SHORT })).thread_id));
    // The SDK's type admits strategy "delete" only; it sends what it is given.
    await api.client.threads.update(keep.thread_id, { ttl: { strategy: "keep_latest", ttl: SHORT } as unknown as { ttl: number } });

    await until(async () => ((await api.client.threads.search({ ids, limit: 100 })).length === 0 ? true : undefined), "the expired threads to be swept", 30_000);
    await until(async () => ((await api.client.threads.getHistory(keep.thread_id, { limit: 100 })).length === 1 ? true : undefined), "the keep_latest thread to be pruned", 30_000);
    await until(async () => (workers.map(swept).reduce((a, b) => a + b.deleted + b.pruned, 0) >= 61 ? true : undefined), "the workers' sweep logs", 10_000);

    const total = workers.map(swept).reduce((a, b) => ({ deleted: a.deleted + b.deleted, pruned: a.pruned + b.pruned }));
    expect(total).toEqual({ deleted: 60, pruned: 1 });
    expect(swept(api)).toEqual({ deleted: 0, pruned: 0 });
    // Kept, with its latest state, and disarmed until its next activity.
    const kept = (await api.client.threads.get(keep.thread_id, { include: ["ttl"] })) as unknown as { ttl: Record<string, unknown> };
    expect(kept.ttl).toMatchObject({ strategy: "keep_latest" });
    expect(kept.ttl).not.toHaveProperty("expires_at");
  });
});
