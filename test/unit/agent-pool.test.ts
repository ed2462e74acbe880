import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AIMessage } from "@langchain/core/messages";
import { END, InMemoryStore, MemorySaver, MessagesAnnotation, START, StateGraph, type LangGraphRunnableConfig } from "@langchain/langgraph";
import { describe, expect, it, onTestFinished } from "vitest";
import { AgentPool, poolKey, watchedConfig, type ConfigHolder } from "../../src/core/agent-pool.ts";
import { GraphRegistry } from "../../src/core/graphs.ts";

/** A fake factory: numbered instances that count how many runs use them at once. */
function fakeFactory() {
  let made = 0;
  const build = async () => ({ id: ++made, users: 0 });
  return { build, made: () => made };
}

describe("AgentPool", () => {
  it("never leases one instance to two holders, under many concurrent leases of one user", async () => {
    const pool = new AgentPool<{ id: number; users: number }>({ perUser: 2, max: 100 });
    const { build } = fakeFactory();
    let overlap = 0;
    const runOnce = async () => {
      const lease = await pool.lease("k", "ada", build);
      lease.value.users += 1;
      if (lease.value.users > 1) overlap += 1;
      await new Promise<void>((r) => setImmediate(r));
      lease.value.users -= 1;
      lease.release(true);
    };
    for (let round = 0; round < 5; round++) await Promise.all(Array.from({ length: 20 }, runOnce));
    expect(overlap).toBe(0);
    const stats = pool.stats();
    expect(stats.leased).toBe(0);
    expect(stats.kept).toBe(2);
    expect(stats.idle).toBe(2);
    expect(stats.reused).toBeGreaterThan(0);
  });

  it("reuses a released instance, and builds a transient one when the user's instances are all leased", async () => {
    const pool = new AgentPool<{ id: number; users: number }>({ perUser: 2, max: 100 });
    const { build, made } = fakeFactory();
    const a = await pool.lease("k", "ada", build);
    const b = await pool.lease("k", "ada", build);
    const c = await pool.lease("k", "ada", build);
    expect([a.pooled, b.pooled, c.pooled]).toEqual([true, true, false]);
    expect(new Set([a.value.id, b.value.id, c.value.id]).size).toBe(3);
    c.release(true);
    a.release(true);
    const d = await pool.lease("k", "ada", build);
    expect(d.value.id).toBe(a.value.id);
    expect(made()).toBe(3);
    expect(pool.stats()).toMatchObject({ kept: 2, leased: 2, idle: 0, transient: 1 });
  });

  it("drops an instance released without reuse (its run failed) and frees its slot", async () => {
    const pool = new AgentPool<{ id: number; users: number }>({ perUser: 1, max: 100 });
    const { build } = fakeFactory();
    const a = await pool.lease("k", "ada", build);
    a.release(false);
    a.release(true); // a second release changes nothing
    expect(pool.stats()).toMatchObject({ kept: 0, idle: 0, leased: 0 });
    const b = await pool.lease("k", "ada", build);
    expect(b.pooled).toBe(true);
    expect(b.value.id).not.toBe(a.value.id);
  });

  it("evicts the user's least recently used idle instance for another key, and the global LRU at the global cap", async () => {
    const pool = new AgentPool<{ id: number; users: number }>({ perUser: 2, max: 3 });
    const { build } = fakeFactory();
    const k1 = await pool.lease("k1", "ada", build);
    const k2 = await pool.lease("k2", "ada", build);
    k1.release(true);
    k2.release(true);
    // Ada is at her cap: k3 evicts k1 (least recently released), not k2.
    const k3 = await pool.lease("k3", "ada", build);
    expect(k3.pooled).toBe(true);
    expect(pool.stats()).toMatchObject({ kept: 2, evicted: 1 });
    expect((await pool.lease("k2", "ada", build)).value.id).toBe(k2.value.id);
    // Bob fills the global cap (3), then needs one more: the only idle one is... none (ada's are leased).
    const bob1 = await pool.lease("b1", "bob", build);
    expect(bob1.pooled).toBe(true);
    const bob2 = await pool.lease("b2", "bob", build);
    expect(bob2.pooled).toBe(false);
    k3.release(true);
    const bob3 = await pool.lease("b3", "bob", build);
    expect(bob3.pooled).toBe(true);
    expect(pool.stats()).toMatchObject({ kept: 3, evicted: 2 });
  });

  it("pools runs without a user under one anonymous user", async () => {
    const pool = new AgentPool<{ id: number; users: number }>({ perUser: 1, max: 10 });
    const { build } = fakeFactory();
    const a = await pool.lease("k", null, build);
    expect((await pool.lease("k2", null, build)).pooled).toBe(false);
    a.release(true);
    expect((await pool.lease("k", null, build)).value.id).toBe(a.value.id);
  });

  it("frees the slot of an instance whose build failed", async () => {
    const pool = new AgentPool<number>({ perUser: 1, max: 10 });
    await expect(pool.lease("k", "ada", () => Promise.reject(new Error("no model")))).rejects.toThrow("no model");
    expect(pool.stats()).toMatchObject({ kept: 0, leased: 0 });
    expect((await pool.lease("k", "ada", () => Promise.resolve(1))).pooled).toBe(true);
  });
});

describe("poolKey", () => {
  const config = (configurable: Record<string, unknown>, metadata: Record<string, unknown> = {}) => ({ configurable, metadata, tags: ["t"] });

  it("ignores run-specific values and the metadata, not the rest", () => {
    const a = poolKey("g", "ada", config({ model: "m", thread_id: "t1", run_id: "r1" }, { run_id: "r1" }));
    expect(poolKey("g", "ada", config({ run_id: "r2", model: "m", thread_id: "t2", checkpoint_id: "c" }, { x: 1 }))).toBe(a);
    expect(poolKey("g", "ada", config({ model: "n", thread_id: "t1" }))).not.toBe(a);
    expect(poolKey("g", "bob", config({ model: "m" }))).not.toBe(a);
    expect(poolKey("h", "ada", config({ model: "m" }))).not.toBe(a);
    expect(poolKey("g", "ada", config({ model: "m", assistant_id: "other" }))).not.toBe(poolKey("g", "ada", config({ model: "m", assistant_id: "one" })));
    expect(poolKey("g", "ada", { ...config({ model: "m" }), tags: [] })).not.toBe(a);
  });
});

describe("watchedConfig", () => {
  const holder = (configurable: Record<string, unknown>): ConfigHolder => ({
    current: { configurable, metadata: { run_id: "r1" } },
    building: true,
    tainted: false,
  });

  it("lets a factory read shared values without tainting the instance", () => {
    const h = holder({ model: "m", thread_id: "t1" });
    const seen = watchedConfig(h);
    expect(seen.configurable?.model).toBe("m");
    expect(h.tainted).toBe(false);
  });

  it("taints an instance whose factory read a run-specific value, spread the configurable or read the metadata", () => {
    for (const read of [
      (c: ReturnType<typeof watchedConfig>) => c.configurable?.thread_id,
      (c: ReturnType<typeof watchedConfig>) => ({ ...c.configurable }),
      (c: ReturnType<typeof watchedConfig>) => "checkpoint_id" in c.configurable!,
      (c: ReturnType<typeof watchedConfig>) => c.metadata?.run_id,
      (c: ReturnType<typeof watchedConfig>) => JSON.stringify(c),
    ]) {
      const h = holder({ model: "m", thread_id: "t1" });
      read(watchedConfig(h));
      expect(h.tainted).toBe(true);
    }
  });

  it("reads through to the run that holds the instance now, after the build, without tainting", () => {
    const h = holder({ thread_id: "t1" });
    const seen = watchedConfig(h);
    h.building = false;
    h.current = { configurable: { thread_id: "t2" }, metadata: { run_id: "r2" } };
    expect(seen.configurable?.thread_id).toBe("t2");
    expect(seen.metadata?.run_id).toBe("r2");
    expect({ ...seen.configurable }).toEqual({ thread_id: "t2" });
    expect(h.tainted).toBe(false);
  });
});

describe("GraphRegistry.lease (factory graphs)", () => {
  /** A registry over one module whose export calls `build` (set per test), so the graph can use this file's imports. */
  async function registryOf(build: (config: LangGraphRunnableConfig) => unknown) {
    const dir = mkdtempSync(join(tmpdir(), "baton-pool-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "graph.mjs"), "export const make = (config) => globalThis.__batonPoolTest(config);\n");
    (globalThis as Record<string, unknown>).__batonPoolTest = build;
    const registry = new GraphRegistry([{ graphId: "g", spec: "./graph.mjs:make" }], dir, { perUser: 2, max: 10 });
    await registry.loadAll();
    return registry;
  }
  const attach = { checkpointer: new MemorySaver(), store: new InMemoryStore() };
  const configOf = (threadId: string, extra: Record<string, unknown> = {}) => ({ configurable: { thread_id: threadId, run_id: `r-${threadId}`, ...extra }, metadata: { run_id: `r-${threadId}` } });
  /** A graph whose node answers what `answer` says, given the node's config. */
  const graphAnswering = (answer: (nodeConfig: LangGraphRunnableConfig) => string) =>
    new StateGraph(MessagesAnnotation)
      .addNode("n", (_s, nodeConfig) => ({ messages: [new AIMessage(answer(nodeConfig))] }))
      .addEdge(START, "n")
      .addEdge("n", END)
      .compile();
  const answerOf = async (registry: GraphRegistry, threadId: string, extra: Record<string, unknown> = {}, reuse = true) => {
    const config = configOf(threadId, extra);
    const lease = await registry.lease("g", config, attach, "ada");
    try {
      const graph = lease.graph as unknown as { invoke(input: unknown, config: unknown): Promise<unknown> };
      const out = (await graph.invoke({ messages: [{ role: "user", content: "hi" }] }, config)) as { messages: { content: string }[] };
      return out.messages.at(-1)!.content;
    } finally {
      lease.release(reuse);
    }
  };

  it("reuses an instance whose factory read only shared values, and a config it kept reads the current run's values", async () => {
    let built = 0;
    const registry = await registryOf((config) => {
      built += 1;
      const model = String(config.configurable?.model);
      // Kept and read in the node: the run holding the instance now, as when built per run.
      return graphAnswering(() => `${model} ${String(config.configurable?.thread_id)} ${String(config.metadata?.run_id)}`);
    });
    expect(await answerOf(registry, "t1", { model: "m" })).toBe("m t1 r-t1");
    expect(await answerOf(registry, "t2", { model: "m" })).toBe("m t2 r-t2");
    expect(built).toBe(1);
    expect(await answerOf(registry, "t3", { model: "n" })).toBe("n t3 r-t3");
    expect(built).toBe(2);
    expect(registry.pool.stats()).toMatchObject({ kept: 2, idle: 2, reused: 1 });
  });

  it("never reuses an instance whose factory read a run-specific value while building", async () => {
    let built = 0;
    const registry = await registryOf((config) => {
      built += 1;
      const thread = String(config.configurable?.thread_id);
      return graphAnswering(() => `built for ${thread}`);
    });
    expect(await answerOf(registry, "t1")).toBe("built for t1");
    expect(await answerOf(registry, "t2")).toBe("built for t2");
    expect(built).toBe(2);
    expect(registry.pool.stats()).toMatchObject({ kept: 0, idle: 0, leased: 0 });
  });

  it("drops the instance of a run released without reuse (failed, cancelled)", async () => {
    let built = 0;
    const registry = await registryOf(() => {
      built += 1;
      return graphAnswering(() => `instance ${built}`);
    });
    expect(await answerOf(registry, "t1", {}, false)).toBe("instance 1");
    expect(await answerOf(registry, "t2")).toBe("instance 2");
    expect(await answerOf(registry, "t3")).toBe("instance 2");
  });
});
