/**
 * C6 through the API (docs/scheduling.md): who the user is (the user
 * header without authentication, else metadata.owner), per-user and global
 * caps answered 429 with Retry-After, fair claims across users (a flood of
 * one user delays another user's run by one run slot at most), priorities,
 * and the queue deadline. Every ordering is proven with gates the test
 * opens one at a time, never with timings.
 */
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gate } from "../fixtures/graphs/graphs.ts";
import { human, startServer, type TestServer } from "../helpers/server.ts";

const USER_HEADER = "x-baton-user";

/** An SDK client whose requests name `user` in the user header, and add `priority` to run creations when given. */
function clientAs(t: TestServer, user: string | undefined, priority?: number): Client {
  return new Client({
    apiUrl: t.url,
    defaultHeaders: user === undefined ? {} : { [USER_HEADER]: user },
    onRequest: (url, init) => {
      if (priority === undefined || init.method !== "POST" || !url.pathname.endsWith("/runs") || typeof init.body !== "string") return init;
      return { ...init, body: JSON.stringify({ ...(JSON.parse(init.body) as object), priority }) };
    },
  });
}

/** Starts a `gated` run on a new thread, waiting on its own gate; resolves with the run and its gate. */
async function gatedRun(client: Client, name: string, metadata: Record<string, unknown> = {}, assistant = "gated") {
  // The gate first: it hears of the run's entry only once it exists here.
  const g = gate(name);
  const thread = await client.threads.create();
  const run = await client.runs.create(thread.thread_id, assistant, { input: human(`gate:${name}`), metadata });
  return { run, gate: g };
}

describe("fair claims and priorities (two run slots, no cap in the way)", () => {
  let t: TestServer;
  const SLOTS = 2;
  beforeAll(async () => {
    t = await startServer({ workers: SLOTS, maxRunningPerUser: 1_000, maxPendingPerUser: 1_000, userHeader: USER_HEADER });
  });
  afterAll(async () => {
    await t.close();
  });

  it("one user floods 200 runs; another user's single run starts within one run slot", async () => {
    const id = crypto.randomUUID();
    const hog = clientAs(t, "hog");
    const flood: Awaited<ReturnType<typeof gatedRun>>[] = [];
    for (let batch = 0; batch < 10; batch++) {
      flood.push(...(await Promise.all(Array.from({ length: 20 }, (_, i) => gatedRun(hog, `hog-${id}-${batch * 20 + i}`)))));
    }
    const started = () => flood.filter((f) => f.gate.entered > 0);
    await expect.poll(() => started().length).toBe(SLOTS);

    const polite = await gatedRun(clientAs(t, "polite"), `polite-${id}`);
    // Free one slot at a time (the hog's earliest started run ends) until the polite run starts.
    const opened = new Set<string>();
    while (polite.gate.entered === 0) {
      const before = started().length;
      const next = started().find((f) => !opened.has(f.run.run_id))!;
      opened.add(next.run.run_id);
      next.gate.open();
      await expect.poll(() => polite.gate.entered > 0 || started().length > before).toBe(true);
    }
    const hogStartedFirst = started().length;
    expect(hogStartedFirst, `${hogStartedFirst} of the hog's runs started before the polite user's`).toBeLessThanOrEqual(SLOTS + 1);
    // In fact exactly the runs already running when it arrived: the next free slot was its.
    expect(hogStartedFirst).toBe(SLOTS);

    polite.gate.open();
    for (const f of flood) f.gate.open();
    const done = await clientAs(t, "polite").runs.join(polite.run.thread_id, polite.run.run_id);
    expect((done as { messages: { content: string }[] }).messages.at(-1)?.content).toBe(`echo: gate:polite-${id}`);
    await Promise.all(flood.map((f) => hog.runs.join(f.run.thread_id, f.run.run_id)));
  });

  it("claims by priority: the request's field, else the run's metadata, else the assistant's; FIFO within a thread kept", async () => {
    const id = crypto.randomUUID();
    // Both slots held, by another user.
    const blockers = [await gatedRun(clientAs(t, "blocker"), `block-${id}-0`), await gatedRun(clientAs(t, "blocker"), `block-${id}-1`)];
    await expect.poll(() => blockers.every((b) => b.gate.entered === 1)).toBe(true);

    const user = clientAs(t, "prio");
    const urgent = await user.assistants.create({ graphId: "gated", metadata: { priority: 7 }, name: `urgent-${id}` });
    const queued = {
      plain: await gatedRun(user, `plain-${id}`),
      field: await gatedRun(clientAs(t, "prio", 10), `field-${id}`, { priority: -50 }),
      metadata: await gatedRun(user, `meta-${id}`, { priority: 5 }),
      assistant: await gatedRun(user, `asst-${id}`, {}, urgent.assistant_id),
      low: await gatedRun(clientAs(t, "prio", -3), `low-${id}`),
    };
    // A priority-100 run queued on the plain run's thread waits behind it (FIFO within a thread).
    const behindGate = gate(`behind-${id}`);
    const behind = await clientAs(t, "prio", 100).runs.create(queued.plain.run.thread_id, "gated", { input: human(`gate:behind-${id}`) });

    const order: string[] = [];
    const entered = () => [...Object.entries(queued), ["behind", { gate: behindGate }] as const].filter(([, q]) => q.gate.entered > 0).map(([name]) => name);
    // Each release frees one slot; the run that takes it is the next in order.
    const release = async (open: () => void) => {
      const before = entered().length;
      open();
      await expect.poll(() => entered().length).toBe(before + 1);
      order.push(entered().find((name) => !order.includes(name))!);
    };
    await release(() => blockers[0]!.gate.open());
    await release(() => blockers[1]!.gate.open());
    await release(() => queued.field.gate.open());
    await release(() => queued.assistant.gate.open());
    // The plain run ends: the priority-100 run behind it on its thread is now its thread's oldest.
    await release(() => queued.plain.gate.open());
    await release(() => queued.metadata.gate.open());
    expect(order).toEqual(["field", "assistant", "metadata", "plain", "behind", "low"]);
    queued.low.gate.open();
    behindGate.open();
    await user.runs.join(queued.low.run.thread_id, queued.low.run.run_id);
    await user.runs.join(behind.thread_id, behind.run_id);
  });

  it("refuses a priority out of bounds or not an integer (422), creating nothing", async () => {
    const thread = await t.client.threads.create();
    for (const priority of [101, -101, 1.5, "high"]) {
      const response = await fetch(`${t.url}/threads/${thread.thread_id}/runs`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ assistant_id: "echo", input: human("hi"), priority }),
      });
      expect(response.status, `priority ${String(priority)}`).toBe(422);
      expect(((await response.json()) as { detail: string }).detail).toMatch(/priority/);
    }
    expect(await t.client.runs.list(thread.thread_id)).toEqual([]);
  });
});

describe("caps and 429 (two running and two pending per user, four pending in all)", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startServer({ workers: 8, maxRunningPerUser: 2, maxPendingPerUser: 2, maxPendingRuns: 4, userHeader: USER_HEADER });
  });
  afterAll(async () => {
    await t.close();
  });

  /** Fills `user`'s two running slots and two pending places; resolves with its runs. */
  async function fill(client: Client, user: string, id: string, metadata: Record<string, unknown> = {}) {
    const runs: Awaited<ReturnType<typeof gatedRun>>[] = [];
    for (const i of [0, 1, 2, 3]) {
      runs.push(await gatedRun(client, `${user}-${id}-${i}`, metadata));
      // One at a time, so the two that cannot start are the pending ones whatever the claim's speed.
      if (i < 2) await expect.poll(() => runs[i]!.gate.entered).toBe(1);
    }
    const statuses = await Promise.all(runs.map(async (r) => (await client.runs.get(r.run.thread_id, r.run.run_id)).status));
    expect(statuses.sort()).toEqual(["pending", "pending", "running", "running"]);
    return runs;
  }

  const refusal = async (client: Client, metadata: Record<string, unknown> = {}) => {
    const thread = await client.threads.create();
    const error = await client.runs.create(thread.thread_id, "echo", { input: human("one more"), metadata }).then(
      () => undefined,
      (e: unknown) => e as { status?: number; message?: string },
    );
    return { thread, error };
  };

  it("caps a user's running runs while another user is served, and sheds load with 429 and Retry-After", async () => {
    const id = crypto.randomUUID();
    // Named by metadata.owner: no user header, no authentication.
    const hog = await fill(t.client, "hog", id, { owner: "hog" });

    const thread = await t.client.threads.create();
    const refused = await fetch(`${t.url}/threads/${thread.thread_id}/runs`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ assistant_id: "echo", input: human("one more"), metadata: { owner: "hog" } }),
    });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("Retry-After")).toBe("5");
    expect(((await refused.json()) as { detail: string }).detail).toMatch(/User 'hog' already has 2 pending runs/);
    expect(await t.client.runs.list(thread.thread_id)).toEqual([]);

    // Another user is not starved.
    const out = (await t.client.runs.wait(null, "echo", { input: human("me too"), metadata: { owner: "polite" } })) as { messages: { content: string }[] };
    expect(out.messages.at(-1)!.content).toBe("echo: me too");

    for (const r of hog) r.gate.open();
    await Promise.all(hog.map((r) => t.client.runs.join(r.run.thread_id, r.run.run_id)));
  });

  it("the user header names the user, over metadata.owner", async () => {
    const id = crypto.randomUUID();
    const alice = clientAs(t, "alice");
    const runs = await fill(alice, "alice", id, { owner: "someone-else" });
    // Alice's queue is full, whatever owner her runs' metadata claims.
    const mine = await refusal(alice, { owner: "bob" });
    expect(mine.error?.status).toBe(429);
    expect(mine.error?.message).toMatch(/User 'alice' already has 2 pending runs/);
    expect(await t.client.runs.list(mine.thread.thread_id)).toEqual([]);
    // Naming alice in metadata does not put bob's run on her quota.
    const bobs = await clientAs(t, "bob").runs.wait(null, "echo", { input: human("bob here"), metadata: { owner: "alice" } });
    expect((bobs as { messages: { content: string }[] }).messages.at(-1)!.content).toBe("echo: bob here");
    for (const r of runs) r.gate.open();
    await Promise.all(runs.map((r) => alice.runs.join(r.run.thread_id, r.run.run_id)));
  });

  it("a full queue answers 429 to everyone, and a full anonymous user to anonymous callers", async () => {
    const carol = await fill(clientAs(t, "carol"), "carol", crypto.randomUUID());
    // The anonymous user is not capped in running runs: delayed runs stay pending.
    const anonymous = [];
    for (const i of [0, 1]) {
      const thread = await t.client.threads.create();
      anonymous.push(await t.client.runs.create(thread.thread_id, "echo", { input: human(`later ${i}`), afterSeconds: 3600 }));
    }
    // Four pending in all: the queue is full for a user with nothing queued.
    const full = await refusal(clientAs(t, "dave"));
    expect(full.error?.status).toBe(429);
    expect(full.error?.message).toMatch(/run queue is full \(4 pending runs\)/);
    for (const r of carol) r.gate.open();
    await Promise.all(carol.map((r) => t.client.runs.join(r.run.thread_id, r.run.run_id)));
    // Callers with no user header and no owner are one user, with its own pending cap.
    const anon = await refusal(t.client);
    expect(anon.error?.status).toBe(429);
    expect(anon.error?.message).toMatch(/anonymous user .* already has 2 pending runs/);
    expect(await t.client.runs.list(anon.thread.thread_id)).toEqual([]);
    for (const r of anonymous) await t.client.runs.cancel(r.thread_id, r.run_id);
  });
});

describe("queue deadline (maxQueueWaitMs)", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startServer({ workers: 1, maxQueueWaitMs: 300, sweepIntervalMs: 100 });
  });
  afterAll(async () => {
    await t.close();
  });

  it("ends a run that waited too long as timeout with the reason; its joiners and streams are told", async () => {
    const id = crypto.randomUUID();
    const blocker = await gatedRun(t.client, `deadline-${id}`);
    await expect.poll(() => blocker.gate.entered).toBe(1);
    const thread = await t.client.threads.create();
    const waiting = await t.client.runs.create(thread.thread_id, "echo", { input: human("too late"), streamResumable: true });
    const answer = (await t.client.runs.join(thread.thread_id, waiting.run_id)) as { __error__?: { error: string; message: string } };
    expect(answer.__error__).toMatchObject({ error: "QueueTimeout", message: expect.stringMatching(/still pending 300 ms after it became due/) });
    const run = await t.client.runs.get(thread.thread_id, waiting.run_id);
    expect(run.status).toBe("timeout");
    // A resumable run's events are kept after the deadline ended it: a client that reconnects now reads how it ended.
    const events: { event: string; data: unknown }[] = [];
    for await (const part of t.client.runs.joinStream(thread.thread_id, waiting.run_id, { lastEventId: "-" })) events.push(part);
    expect(events.find((e) => e.event === "error")?.data).toMatchObject({ error: "QueueTimeout" });
    // Its thread's stream has its end too: a thread stream reader does not wait on it.
    for await (const part of t.client.threads.joinStream(thread.thread_id, { lastEventId: "-", streamMode: "lifecycle" })) {
      expect(part).toMatchObject({ event: "metadata", data: { run_id: waiting.run_id, status: "run_done", run_status: "timeout" } });
      break;
    }
    // The thread is free again, and the run that held the slot ends as usual.
    expect((await t.client.threads.get(thread.thread_id)).status).toBe("idle");
    blocker.gate.open();
    await t.client.runs.join(blocker.run.thread_id, blocker.run.run_id);
    expect((await t.client.runs.get(blocker.run.thread_id, blocker.run.run_id)).status).toBe("success");
  });
});
