/**
 * C9 in one process: a node that blocks the event loop for longer than the
 * lease must not get its live run requeued and executed a second time.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { human, startServer, type TestServer } from "../helpers/server.ts";

let t: TestServer;
beforeAll(async () => {
  // A 1 s lease swept every 100 ms: a 2.5 s block outlives the lease twice
  // over. The renewal timer is set beyond the test, so only the sweeper's own
  // renew-before-sweep can keep the run alive (without it this test fails).
  t = await startServer({ leaseMs: 1000, leaseRenewMs: 60_000, sweepIntervalMs: 100 });
});
afterAll(async () => {
  await t.close();
});

describe("a node blocking the event loop past its lease", () => {
  it("is not re-dispatched: one attempt, one answer", async () => {
    const thread = await t.client.threads.create();
    const run = await t.client.runs.create(thread.thread_id, "blocker", { input: human("block:2500"), streamMode: ["updates"] });
    const events: { event: string; data: unknown }[] = [];
    for await (const part of t.client.runs.joinStream(thread.thread_id, run.run_id)) events.push(part);
    const metadata = events.filter((e) => e.event === "metadata").map((e) => e.data as { attempt: number });
    expect(metadata).toEqual([{ run_id: run.run_id, attempt: 1 }]);
    expect((await t.client.runs.get(thread.thread_id, run.run_id)).status).toBe("success");
    const state = (await t.client.threads.getState(thread.thread_id)).values as { messages: { content: string }[] };
    expect(state.messages.map((m) => m.content)).toEqual(["block:2500", "unblocked after 2500 ms"]);
  });
});
