/**
 * Idempotency-Key on run and thread creation (issue 12, item 5), through
 * the official SDK and plain fetch: concurrent retries with one key create
 * exactly one record and all get it; the same key with a different body is
 * refused with 422 and creates nothing; a first request that failed frees
 * its key.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gate } from "../fixtures/graphs/graphs.ts";
import { human, startServer, type TestServer } from "../helpers/server.ts";

let t: TestServer;
beforeAll(async () => {
  t = await startServer({ workers: 4 });
});
afterAll(async () => {
  await t?.close();
});

async function post(path: string, body: unknown, key: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${t.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": key },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("Idempotency-Key on run creation", () => {
  it("20 concurrent retries with one key create exactly one run, and all are answered with it", async () => {
    const thread = await t.client.threads.create();
    const key = randomUUID();
    const body = { assistant_id: "echo", input: human("once"), metadata: { b: 2, a: 1 } };
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => post(`/threads/${thread.thread_id}/runs`, i % 2 === 0 ? body : { metadata: { a: 1, b: 2 }, input: human("once"), assistant_id: "echo" }, key)));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    const ids = new Set(answers.map((a) => a.body.run_id));
    expect(ids.size).toBe(1);
    await t.client.runs.join(thread.thread_id, [...ids][0] as string);
    const runs = await t.client.runs.list(thread.thread_id);
    expect(runs.map((r) => r.run_id)).toEqual([...ids]);
    // The thread got one answer, not twenty.
    const state = await t.client.threads.getState<{ messages: { content: string }[] }>(thread.thread_id);
    expect(state.values.messages.map((m) => m.content)).toEqual(["once", "echo: once"]);
  });

  it("retries of a waited run still in flight wait for it and answer its output", async () => {
    const name = `idem-${randomUUID()}`;
    const g = gate(name);
    const key = randomUUID();
    const tag = randomUUID();
    const body = { assistant_id: "gated", input: human(`gate:${name}`), metadata: { tag }, on_completion: "keep" };
    const first = post("/runs/wait", body, key);
    await expect.poll(() => g.entered).toBe(1);
    const retries = Array.from({ length: 19 }, () => post("/runs/wait", body, key));
    g.open();
    const answers = await Promise.all([first, ...retries]);
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    for (const answer of answers) expect(answer.body).toEqual(answers[0].body);
    expect(g.entered).toBe(1);
    // One temporary thread, carrying the run's metadata: one run.
    expect(await t.client.threads.count({ metadata: { tag } })).toBe(1);
  });

  it("refuses the same key with a different body (422) and creates nothing", async () => {
    const thread = await t.client.threads.create();
    const key = randomUUID();
    expect((await post(`/threads/${thread.thread_id}/runs`, { assistant_id: "echo", input: human("a") }, key)).status).toBe(200);
    const other = await post(`/threads/${thread.thread_id}/runs`, { assistant_id: "echo", input: human("b") }, key);
    expect(other).toEqual({ status: 422, body: { detail: expect.stringMatching(/^Idempotency-Key '.+' was already used with a different request/) } });
    // Another thread is another request too.
    const elsewhere = await t.client.threads.create();
    expect((await post(`/threads/${elsewhere.thread_id}/runs`, { assistant_id: "echo", input: human("a") }, key)).status).toBe(422);
    expect(await t.client.runs.list(elsewhere.thread_id)).toEqual([]);
    expect(await t.client.runs.list(thread.thread_id)).toHaveLength(1);
  });

  it("frees the key of a request that failed, so a corrected retry goes through", async () => {
    const thread = await t.client.threads.create();
    const key = randomUUID();
    expect((await post(`/threads/${thread.thread_id}/runs`, { assistant_id: "no-such-graph", input: human("x") }, key)).status).toBe(404);
    const retried = await post(`/threads/${thread.thread_id}/runs`, { assistant_id: "echo", input: human("x") }, key);
    expect(retried.status).toBe(200);
    expect(await t.client.runs.list(thread.thread_id)).toHaveLength(1);
  });

  it("refuses a key on a batch, and a key over 255 characters", async () => {
    expect((await post("/runs/batch", [{ assistant_id: "echo", input: human("x") }], randomUUID())).status).toBe(422);
    expect((await post("/runs", { assistant_id: "echo", input: human("x") }, "k".repeat(256))).body).toEqual({ detail: expect.stringMatching(/at most 255/) });
  });
});

describe("Idempotency-Key on thread creation", () => {
  it("20 concurrent retries create one thread, all answered with it; a different body is 422", async () => {
    const key = randomUUID();
    const tag = randomUUID();
    const answers = await Promise.all(Array.from({ length: 20 }, () => post("/threads", { metadata: { tag } }, key)));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(new Set(answers.map((a) => a.body.thread_id)).size).toBe(1);
    expect(await t.client.threads.count({ metadata: { tag } })).toBe(1);
    expect((await post("/threads", { metadata: { tag, other: true } }, key)).status).toBe(422);
    expect(await t.client.threads.count({ metadata: { tag } })).toBe(1);
    // Without a key, each request is its own.
    await Promise.all([t.client.threads.create({ metadata: { tag } }), t.client.threads.create({ metadata: { tag } })]);
    expect(await t.client.threads.count({ metadata: { tag } })).toBe(3);
  });
});
