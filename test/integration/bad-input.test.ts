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

describe("settings Baton does not implement yet are refused, never ignored", () => {
  it("refuses a bad thread TTL on create and patch (422 naming it), and creates or changes nothing", async () => {
    const before = await t.client.threads.count();
    const created = await call("POST", "/threads", JSON.stringify({ ttl: { strategy: "delete", ttl: 0 } }));
    expect(created.status).toBe(422);
    expect(created.detail).toMatch(/ttl\.ttl: ttl\.ttl must be at least 0\.01 minutes/);
    expect(await t.client.threads.count()).toBe(before);
    const thread = await t.client.threads.create({ metadata: { kept: true } });
    const patched = await call("PATCH", `/threads/${thread.thread_id}`, JSON.stringify({ metadata: { kept: false }, ttl: { strategy: "archive", ttl: 1 } }));
    expect(patched.status).toBe(422);
    expect((await t.client.threads.get(thread.thread_id)).metadata).toEqual({ kept: true });
    // Wrong types are named as such, and null means "not set".
    expect((await call("PATCH", `/threads/${thread.thread_id}`, JSON.stringify({ ttl: 0 }))).status).toBe(422);
    expect((await call("PATCH", `/threads/${thread.thread_id}`, JSON.stringify({ ttl: null }))).status).toBe(200);
  });
  it("refuses a bad store TTL, index, query or refresh_ttl with 422, and stores nothing; index false and ttl null are accepted", async () => {
    const put = (body: Record<string, unknown>) => call("PUT", "/store/items", JSON.stringify({ namespace: ["ttl"], key: "k", value: { a: 1 }, ...body }));
    for (const [body, message] of [
      [{ ttl: -1 }, /ttl must be more than 0 minutes/],
      [{ ttl: 0 }, /ttl must be more than 0 minutes/],
      [{ ttl: "soon" }, /ttl must be a number of minutes/],
      [{ index: true }, /index must be false, null, or a list of field paths/],
      // This server has no store.index: a list of fields to embed cannot be honoured.
      [{ index: ["a"] }, /no semantic index: configure store.index/],
    ] as const) {
      const refused = await put(body);
      expect(refused.status, JSON.stringify(body)).toBe(422);
      expect(refused.detail).toMatch(message);
    }
    expect(await t.client.store.getItem(["ttl"], "k")).toBeNull();
    const search = await call("POST", "/store/items/search", JSON.stringify({ namespace_prefix: ["ttl"], query: 5 }));
    expect(search.status).toBe(422);
    expect(search.detail).toMatch(/query must be a string/);
    expect((await call("POST", "/store/items/search", JSON.stringify({ namespace_prefix: ["ttl"], refresh_ttl: "yes" }))).status).toBe(422);
    const get = await fetch(`${t.url}/store/items?namespace=ttl&key=k&refresh_ttl=maybe`);
    expect(get.status).toBe(422);
    expect(((await get.json()) as { detail: string }).detail).toMatch(/refresh_ttl must be true or false/);
    const plain = await fetch(`${t.url}/store/items`, {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ namespace: ["ttl"], key: "k", value: { a: 1 }, index: false, ttl: null }),
    });
    expect(plain.status).toBe(204);
    expect((await t.client.store.getItem(["ttl"], "k"))?.value).toEqual({ a: 1 });
  });
});

describe("thread search extract", () => {
  it("adds each thread's values at the paths asked for, null where a path leads nowhere", async () => {
    const thread = await t.client.threads.create({ metadata: { extract_case: "yes", tags: ["a", "b"] } });
    const found = (await t.client.threads.search({
      metadata: { extract_case: "yes" },
      extract: { first_tag: "metadata.tags[0]", last_tag: "metadata.tags[-1]", missing: "values.messages[-1].content", whole: "metadata.extract_case" },
    })) as unknown as { thread_id: string; extracted: Record<string, unknown> }[];
    expect(found.map((f) => f.thread_id)).toEqual([thread.thread_id]);
    expect(found[0]!.extracted).toEqual({ first_tag: "a", last_tag: "b", missing: null, whole: "yes" });
  });
  it("refuses a path that does not start at a thread field, or too many paths, naming the alias", async () => {
    const bad = await call("POST", "/threads/search", JSON.stringify({ extract: { x: "secret.values" } }));
    expect(bad.status).toBe(422);
    expect(bad.detail).toMatch(/extract\.x: 'secret\.values' must start with one of values, metadata, config, interrupts/);
    const many = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`a${i}`, "values.x"]));
    expect((await call("POST", "/threads/search", JSON.stringify({ extract: many }))).status).toBe(422);
    expect((await call("POST", "/threads/search", JSON.stringify({ extract: "x" }))).status).toBe(422);
  });
});
