/** Bad input is answered 4xx with a clear JSON detail, and changes nothing. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.ts";

let t: TestServer;
beforeAll(async () => {
  t = await startServer({ maxBodyBytes: 4096 });
});
afterAll(async () => {
  await t.close();
});

async function call(method: string, path: string, body?: string) {
  const response = await fetch(`${t.url}${path}`, { method, headers: { "Content-Type": "application/json" }, body });
  const json = (await response.json()) as { detail: string };
  return { status: response.status, detail: json.detail };
}

describe("bad input", () => {
  it("refuses malformed JSON with 400, as the official server does", async () => {
    const r = await call("POST", "/threads", "{not json");
    expect(r.status).toBe(400);
    expect(r.detail).toMatch(/not valid JSON/);
  });
  it("refuses wrong types naming the field", async () => {
    const r = await call("POST", "/assistants/search", JSON.stringify({ limit: "lots" }));
    expect(r.status).toBe(422);
    expect(r.detail).toMatch(/limit/);
  });
  it("refuses a body over the limit with 413", async () => {
    const r = await call("POST", "/threads", JSON.stringify({ metadata: { big: "x".repeat(10_000) } }));
    expect(r.status).toBe(413);
    expect(r.detail).toMatch(/4096 bytes/);
    expect(await t.client.threads.count()).toBe(0);
  });
  it("answers unknown ids with 404 and non-UUID ids with 422", async () => {
    expect((await call("GET", `/threads/${crypto.randomUUID()}`)).status).toBe(404);
    expect((await call("GET", `/threads/../../etc/passwd`)).status).toBe(404);
    const hostile = await call("GET", `/threads/${encodeURIComponent("'; DROP TABLE runs; --")}`);
    expect(hostile.status).toBe(422);
    expect(hostile.detail).toMatch(/UUID/);
    expect((await call("GET", `/assistants/${crypto.randomUUID()}`)).status).toBe(404);
  });
  it("refuses a run on an unknown graph or assistant and creates nothing", async () => {
    const thread = await t.client.threads.create();
    const r = await call("POST", `/threads/${thread.thread_id}/runs`, JSON.stringify({ assistant_id: "no-such-graph", input: {} }));
    expect(r.status).toBe(404);
    expect(r.detail).toMatch(/no-such-graph/);
    expect(await t.client.runs.list(thread.thread_id)).toEqual([]);
    expect((await t.client.threads.get(thread.thread_id)).status).toBe("idle");
  });
  it("refuses an unsupported contract field with 422 naming it", async () => {
    const thread = await t.client.threads.create();
    const r = await call("POST", `/threads/${thread.thread_id}/runs`, JSON.stringify({ assistant_id: "echo", feedback_keys: ["score"] }));
    expect(r.status).toBe(422);
    expect(r.detail).toMatch(/feedback_keys/);
  });
  it("refuses an unknown run status filter and a bad page size", async () => {
    const thread = await t.client.threads.create();
    const bad = await call("GET", `/threads/${thread.thread_id}/runs?status=exploded`);
    expect(bad.status).toBe(422);
    expect(bad.detail).toMatch(/status/);
    expect((await call("GET", `/threads/${thread.thread_id}/runs?limit=-1`)).status).toBe(422);
  });
  it("refuses an unknown stream mode and strategy", async () => {
    const thread = await t.client.threads.create();
    expect((await call("POST", `/threads/${thread.thread_id}/runs`, JSON.stringify({ assistant_id: "echo", stream_mode: "everything" }))).status).toBe(422);
    expect((await call("POST", `/threads/${thread.thread_id}/runs`, JSON.stringify({ assistant_id: "echo", multitask_strategy: "yolo" }))).status).toBe(422);
    expect(await t.client.runs.list(thread.thread_id)).toEqual([]);
  });
  it("stores hostile strings verbatim and safely", async () => {
    const nasty = `'"; DROP TABLE threads; -- \\u0000 \\\\ <script>alert(1)</script> \u{1F600} \uFFFD`;
    const thread = await t.client.threads.create({ metadata: { nasty } });
    expect((await t.client.threads.get(thread.thread_id)).metadata).toEqual({ nasty });
    expect(await t.client.threads.search({ metadata: { nasty } })).toHaveLength(1);
  });
  it("refuses the NUL character, which Postgres cannot store, on every backend alike", async () => {
    const before = await t.client.threads.count();
    const r = await call("POST", "/threads", JSON.stringify({ metadata: { bad: "a\u0000b" } }));
    expect(r.status).toBe(422);
    expect(r.detail).toMatch(/NUL character/);
    expect(await t.client.threads.count()).toBe(before);
  });
  it("answers unknown routes with a JSON 404", async () => {
    const r = await call("GET", "/nope");
    expect(r.status).toBe(404);
    expect(r.detail).toMatch(/No route/);
  });
});
