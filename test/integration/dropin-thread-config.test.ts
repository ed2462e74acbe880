/**
 * What a thread remembers of its runs' config, as the published dev server
 * does (found by the differential test, test/differential): a run without
 * config (a resume) keeps the configurable values earlier runs sent, the
 * thread record shows them, and every checkpoint's metadata carries the
 * run's configurable so history can be filtered by it.
 */
import { join } from "node:path";
import type { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.ts";

const PROJECT = join(import.meta.dirname, "../fixtures/differential/langgraph.json");

let t: TestServer;
let client: Client;
beforeAll(async () => {
  t = await startServer({ configPath: PROJECT });
  client = t.client;
});
afterAll(async () => {
  await t.close();
});

describe("a thread's config", () => {
  it("is inherited by later runs, the run's own values winning", async () => {
    const thread = await client.threads.create();
    const seen = async (config?: { configurable: Record<string, unknown> }) =>
      ((await client.runs.wait(thread.thread_id, "configured", { input: {}, ...(config ? { config } : {}) })) as { seen: unknown }).seen;

    expect(await seen({ configurable: { flavour: "mint", size: 1 } })).toEqual({ flavour: "mint", size: 1 });
    expect(await seen({ configurable: { size: 2 } })).toEqual({ flavour: "mint", size: 2 });
    expect(await seen()).toEqual({ flavour: "mint", size: 2 });
    const record = await client.threads.get(thread.thread_id);
    expect(record.config).toEqual({ configurable: { flavour: "mint", size: 2, "user-agent": expect.any(String) } });
  });

  it("does not carry a run's checkpoint to the next run", async () => {
    const thread = await client.threads.create();
    /** Runs the chat graph; answers how many human messages the thread then holds. */
    const humans = async (text: string, configurable?: Record<string, unknown>) => {
      const input = { messages: [{ role: "user", content: text }] };
      const values = (await client.runs.wait(thread.thread_id, "chat", { input, ...(configurable ? { config: { configurable } } : {}) })) as {
        messages: { type: string }[];
      };
      return values.messages.filter((message) => message.type === "human").length;
    };

    expect(await humans("one")).toBe(1);
    const first = await client.threads.getState(thread.thread_id);
    expect(await humans("two")).toBe(2);
    // A run from the first checkpoint (time travel) forks from there ...
    expect(await humans("three", { checkpoint_id: first.checkpoint.checkpoint_id })).toBe(2);
    // ... and the next run goes on from the latest state, not from that checkpoint again.
    expect(await humans("four")).toBe(3);
    expect((await client.threads.get(thread.thread_id)).config?.configurable).not.toHaveProperty("checkpoint_id");
  });

  it("is in every checkpoint's metadata, so history filters by it", async () => {
    const thread = await client.threads.create();
    await client.runs.wait(thread.thread_id, "configured", { input: {}, config: { configurable: { flavour: "lime" } } });
    const state = await client.threads.getState(thread.thread_id);
    expect(state.metadata).toMatchObject({ flavour: "lime", graph_id: "configured", "user-agent": expect.any(String) });
    expect(state.metadata).not.toHaveProperty("checkpoint_id");
    const found = await client.threads.getHistory(thread.thread_id, { metadata: { flavour: "lime" } });
    expect(found.length).toBeGreaterThan(0);
  });
});
