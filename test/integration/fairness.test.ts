/**
 * C6 through the API: one user's runs are capped, other users still get
 * served, and a full queue answers 429 with Retry-After.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gate } from "../fixtures/graphs/graphs.ts";
import { human, startServer, type TestServer } from "../helpers/server.ts";

let t: TestServer;
beforeAll(async () => {
  t = await startServer({ workers: 8, maxRunningPerUser: 2, maxPendingPerUser: 2 });
});
afterAll(async () => {
  await t.close();
});

describe("fair and bounded (C6)", () => {
  it("caps a user's running runs while another user is served, and sheds load with 429", async () => {
    const name = `fair-${crypto.randomUUID()}`;
    const g = gate(name);
    // One at a time, so the pending limit (2) is reached by the two that
    // cannot start, whichever backend and however fast the claim.
    const hog: Awaited<ReturnType<typeof t.client.runs.create>>[] = [];
    for (const i of [0, 1, 2, 3]) {
      const thread = await t.client.threads.create({ metadata: { owner: "hog" } });
      hog.push(await t.client.runs.create(thread.thread_id, "gated", { input: human(`gate:${name}`) }));
      if (i < 2) await expect.poll(() => g.entered).toBe(i + 1);
    }
    await expect.poll(() => g.entered).toBe(2);
    const statuses = async () => Promise.all(hog.map(async (r) => (await t.client.runs.get(r.thread_id, r.run_id)).status));
    expect((await statuses()).sort()).toEqual(["pending", "pending", "running", "running"]);

    // The hog's queue is full: its next run is refused with "try again".
    const thread = await t.client.threads.create({ metadata: { owner: "hog" } });
    const refused = await fetch(`${t.url}/threads/${thread.thread_id}/runs`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ assistant_id: "echo", input: human("one more") }),
    });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("Retry-After")).toBe("5");
    expect(((await refused.json()) as { detail: string }).detail).toMatch(/User 'hog' already has 2 pending runs/);

    // Another user is not starved.
    const other = await t.client.threads.create({ metadata: { owner: "polite" } });
    const out = (await t.client.runs.wait(other.thread_id, "echo", { input: human("me too") })) as { messages: { content: string }[] };
    expect(out.messages.at(-1)!.content).toBe("echo: me too");

    g.open();
    await Promise.all(hog.map((r) => t.client.runs.join(r.thread_id, r.run_id)));
    expect(await statuses()).toEqual(["success", "success", "success", "success"]);
    await expect.poll(() => g.entered).toBe(4);
  });
});
