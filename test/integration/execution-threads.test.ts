/**
 * Embedded mode with graphs in two execution threads, each with its own
 * SQLite connection to one file: one writer per thread of conversation
 * still holds across connections (C1, C2, C4), a thread whose loop a graph
 * blocks is not judged dead by its sibling (C9), a thread that dies has its
 * runs requeued at once and is restarted (C3), and a run's events are on
 * the HTTP side by the time the database says it finished.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { human, startServer, type TestServer } from "../helpers/server.ts";

let t: TestServer;
beforeAll(async () => {
  // A 1 s lease and a 100 ms sweep interval: a 2.5 s block outlives the lease.
  t = await startServer({ executionThreads: 2, workers: 16, leaseMs: 1000, leaseRenewMs: 60_000, sweepIntervalMs: 100 });
});
afterAll(async () => {
  await t.close();
});

type Msg = { type: string; content: string };

describe("two execution threads on one SQLite file", () => {
  it("starts both", () => {
    expect(t.server.executionThreads).toBe(2);
  });

  it("enqueue burst on one thread: every answer its own, every message once in the final state", async () => {
    const thread = await t.client.threads.create();
    const texts = Array.from({ length: 60 }, (_, i) => `m-${i}`);
    const answers = await Promise.all(
      texts.map(async (text) => {
        const out = (await t.client.runs.wait(thread.thread_id, "echo", { input: human(text), multitaskStrategy: "enqueue" })) as { messages: Msg[] };
        return { text, out };
      }),
    );
    for (const { text, out } of answers) {
      expect(out.messages.filter((m) => m.type === "human").at(-1)!.content).toBe(text);
      expect(out.messages.at(-1)).toMatchObject({ type: "ai", content: `echo: ${text}` });
    }
    const contents = ((await t.client.threads.getState(thread.thread_id)).values as { messages: Msg[] }).messages.map((m) => m.content);
    expect(new Set(contents).size).toBe(contents.length);
    expect(contents.filter((c) => !c.startsWith("echo: ")).sort()).toEqual([...texts].sort());
    expect(contents.filter((c) => c.startsWith("echo: "))).toHaveLength(texts.length);
  });

  it("interrupt burst on one thread: winners and losers as on one connection", async () => {
    const thread = await t.client.threads.create();
    const texts = Array.from({ length: 40 }, (_, i) => `i-${i}`);
    const outcomes = await Promise.all(
      texts.map(async (text) => {
        try {
          const out = (await t.client.runs.wait(thread.thread_id, "echo", { input: human(text), multitaskStrategy: "interrupt" })) as { messages: Msg[] };
          return { text, out };
        } catch (error) {
          expect((error as Error).message).toMatch(/RunInterrupted/);
          return { text, out: undefined };
        }
      }),
    );
    for (const { text, out } of outcomes) {
      if (out === undefined) continue;
      expect(out.messages.filter((m) => m.type === "human").at(-1)!.content).toBe(text);
      expect(out.messages.at(-1)).toMatchObject({ type: "ai", content: `echo: ${text}` });
    }
    const contents = ((await t.client.threads.getState(thread.thread_id)).values as { messages: Msg[] }).messages.map((m) => m.content);
    expect(new Set(contents).size).toBe(contents.length);
    const runs = await t.client.runs.list(thread.thread_id, { limit: 100 });
    expect(runs.filter((r) => r.status === "running" || r.status === "pending")).toEqual([]);
  });

  it("100 concurrent stateless waits: each gets its own answer", async () => {
    const texts = Array.from({ length: 100 }, (_, i) => `s-${i}`);
    const outs = await Promise.all(texts.map((text) => t.client.runs.wait(null, "echo", { input: human(text) }) as Promise<{ messages: Msg[] }>));
    outs.forEach((out, i) => expect(out.messages.map((m) => m.content)).toEqual([texts[i], `echo: ${texts[i]}`]));
  });

  it("a graph blocking its thread's loop past the lease is not re-dispatched by the other thread (C9)", async () => {
    const thread = await t.client.threads.create();
    const run = await t.client.runs.create(thread.thread_id, "blocker", { input: human("block:2500"), streamMode: ["updates"] });
    const events: { event: string; data: unknown }[] = [];
    for await (const part of t.client.runs.joinStream(thread.thread_id, run.run_id)) events.push(part);
    expect(events.filter((e) => e.event === "metadata").map((e) => e.data)).toEqual([{ run_id: run.run_id, attempt: 1 }]);
    expect((await t.client.runs.get(thread.thread_id, run.run_id)).status).toBe("success");
    const state = (await t.client.threads.getState(thread.thread_id)).values as { messages: Msg[] };
    expect(state.messages.map((m) => m.content)).toEqual(["block:2500", "unblocked after 2500 ms"]);
  });

  it("a thread that dies has its run requeued at once and finished once; the thread comes back", async () => {
    const thread = await t.client.threads.create();
    // The lease (1 s) is renewed only every 60 s here, and threads never sweep: the
    // requeue can only come from the HTTP thread seeing the execution thread die.
    const out = (await t.client.runs.wait(thread.thread_id, "crasher", { input: human("crash me") })) as { messages: Msg[] };
    expect(out.messages.map((m) => m.content)).toEqual(["crash me", "survived on attempt 2"]);
    const runs = await t.client.runs.list(thread.thread_id);
    expect(runs.map((r) => r.status)).toEqual(["success"]);
    // Both threads execute again: a burst wider than one thread's share of slots (8) finishes.
    const outs = await Promise.all(
      Array.from({ length: 24 }, (_, i) => t.client.runs.wait(null, "echo", { input: human(`after-${i}`) }) as Promise<{ messages: Msg[] }>),
    );
    outs.forEach((o, i) => expect(o.messages.at(-1)!.content).toBe(`echo: after-${i}`));
  });

  it("a resumable run's events are joinable as soon as the database says it finished", async () => {
    // 40 at once keep the execution threads busy, so that their reports lag
    // behind the commits; each is joined the moment a poll sees it finished.
    // (The window the HTTP side's barrier closes, between an execution
    // thread's commit and its report arriving, is narrower than this test
    // hits reliably: it checks the outcome, not that window.)
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const thread = await t.client.threads.create();
        const run = await t.client.runs.create(thread.thread_id, "echo", { input: human(`r-${i}`), streamMode: ["values"], streamResumable: true });
        await expect.poll(async () => (await t.client.runs.get(thread.thread_id, run.run_id)).status, { interval: 1, timeout: 10_000 }).toBe("success");
        const parts: { event: string }[] = [];
        for await (const part of t.client.runs.joinStream(thread.thread_id, run.run_id)) parts.push(part);
        expect(parts.map((p) => p.event)).toEqual(["metadata", "values", "values"]);
      }),
    );
  });
});
