/**
 * The HTTP edge as the official server has it (issue #10 items 6-9, 15, 17
 * and the `http` keys of langgraph.json): the project's own Hono app mounted
 * with the official precedence, request headers in `config.configurable`,
 * CORS with Private Network Access, `{input: {}, command}`, a missing store
 * item, joins with an empty `stream_mode`, `mount_prefix` and `disable_*`.
 * Driven through the official SDK, and plain fetch where a browser's requests
 * (preflights, Origin) are what is tested.
 */
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { human, startGatedRun, startServer, type TestServer } from "../helpers/server.ts";

const PROJECT = join(import.meta.dirname, "../fixtures/http/langgraph.json");
const STRICT = join(import.meta.dirname, "../fixtures/http/strict.json");
const fixture = (name: string) => join(import.meta.dirname, "../fixtures/http", name);

type Seen = { seen: Record<string, unknown> };

let t: TestServer;
beforeAll(async () => {
  t = await startServer({ configPath: PROJECT, maxBodyBytes: 16_384 });
});
afterAll(async () => {
  await t.close();
});

/** Reads an SSE body until it ends, returning the event names in order. */
async function eventNames(response: Response): Promise<string[]> {
  const text = await response.text();
  return [...text.matchAll(/^event: (.+)$/gm)].map((m) => m[1]!);
}

describe("the project's http.app", () => {
  it("serves its own routes, and its 200 not-found handler does not shadow the API", async () => {
    expect(await (await fetch(`${t.url}/custom/ping`)).json()).toEqual({ pong: true });
    const thread = await t.client.threads.create();
    expect((await t.client.threads.get(thread.thread_id)).thread_id).toBe(thread.thread_id);
    const nowhere = await fetch(`${t.url}/no/such/route`);
    expect(nowhere.status).toBe(404);
    expect(((await nowhere.json()) as { detail: string }).detail).toMatch(/No route for GET \/no\/such\/route/);
  });

  it("wraps the API routes in its middleware, errors included", async () => {
    const info = await fetch(`${t.url}/info`);
    expect(info.headers.get("x-project-middleware")).toBe("seen");
    const bad = await fetch(`${t.url}/threads`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{not json" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { detail: string }).detail).toMatch(/not valid JSON/);
    expect(bad.headers.get("x-project-middleware")).toBe("seen");
  });

  it("keeps the body limit in front of it and of the API", async () => {
    const big = await fetch(`${t.url}/threads`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ metadata: { big: "x".repeat(20_000) } }) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { detail: string }).detail).toMatch(/16384 bytes/);
  });

  it("hands the run a body its middleware rewrote, in place or as a new request", async () => {
    for (const mode of ["in-place", "replace"]) {
      const client = new Client({ apiUrl: t.url, defaultHeaders: { "x-rewrite-body": mode } });
      const thread = await client.threads.create();
      const out = (await client.runs.wait(thread.thread_id, "configurable", { input: {}, config: { configurable: { from_body: 1 } } })) as Seen;
      expect(out.seen).toMatchObject({ rewritten: mode, from_body: 1 });
    }
  });
});

describe("request headers in config.configurable", () => {
  it("copies x-* headers and user-agent, never the credentials ones", async () => {
    const client = new Client({
      apiUrl: t.url,
      defaultHeaders: { "x-team-id": "t1", "x-api-key": "k", "x-tenant-id": "tenant", "x-service-key": "svc", authorization: "Bearer secret", "user-agent": "baton-test" },
    });
    const out = (await client.runs.wait(null, "configurable", { input: {}, config: { configurable: { "x-team-id": "from-body", from_body: true } } })) as Seen;
    expect(out.seen).toMatchObject({ "x-team-id": "t1", "user-agent": "baton-test", from_body: true });
    for (const hidden of ["x-api-key", "x-tenant-id", "x-service-key", "authorization"]) expect(out.seen).not.toHaveProperty(hidden);
  });

  it("copies them for streamed runs too, and they stay on the run's record", async () => {
    const client = new Client({ apiUrl: t.url, defaultHeaders: { "x-request-tag": "streamed" } });
    const thread = await client.threads.create();
    let last: Seen | undefined;
    for await (const part of client.runs.stream(thread.thread_id, "configurable", { input: {}, streamMode: "values" })) {
      if (part.event === "values") last = part.data as Seen;
    }
    expect(last?.seen["x-request-tag"]).toBe("streamed");
    const [run] = await client.runs.list(thread.thread_id);
    expect((run as unknown as { kwargs: { config: { configurable: Record<string, unknown> } } }).kwargs.config.configurable["x-request-tag"]).toBe("streamed");
  });
});

describe("runs", () => {
  it("resumes with {input: {}, command} as Agent Chat UI sends it, and a command wins over a non-empty input", async () => {
    for (const input of [{}, human("ignored")]) {
      const thread = await t.client.threads.create();
      await t.client.runs.wait(thread.thread_id, "ask", { input: human("start") });
      expect((await t.client.threads.get(thread.thread_id)).status).toBe("interrupted");
      const done = (await t.client.runs.wait(thread.thread_id, "ask", { input, command: { resume: "yes" } })) as { answer: string; messages: { content: string }[] };
      expect(done.answer).toBe("yes");
      expect(done.messages.map((m) => m.content)).toEqual(["start", "answer: yes"]);
    }
  });

  it("joins a stream with an empty or absent stream_mode with the run's own modes", async () => {
    const { thread, run, gate } = await startGatedRun(t.client, { streamMode: ["values", "updates"] });
    // The Python SDK's join_stream sends `stream_mode=`; the JS SDK sends none.
    const empty = await fetch(`${t.url}/threads/${thread.thread_id}/runs/${run.run_id}/stream?stream_mode=`);
    const absent = t.client.runs.joinStream(thread.thread_id, run.run_id);
    const first = await absent.next();
    expect(first.value?.event).toBe("metadata");
    gate.open();
    const rest: string[] = [];
    for await (const part of absent) rest.push(part.event);
    expect(rest).toEqual(expect.arrayContaining(["values", "updates"]));
    const names = await eventNames(empty);
    expect(names[0]).toBe("metadata");
    expect(names).toEqual(expect.arrayContaining(["values", "updates"]));
  });
});

describe("store", () => {
  it("answers a missing item with null", async () => {
    expect(await t.client.store.getItem(["nobody"], "nothing")).toBeNull();
  });
});

describe("CORS without http.cors: every origin, as on the dev server", () => {
  it("answers a preflight, with Private Network Access for Studio's hosted page", async () => {
    const response = await fetch(`${t.url}/threads/${crypto.randomUUID()}/runs/stream`, {
      method: "OPTIONS",
      headers: {
        Origin: "https://smith.langchain.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-api-key",
        "Access-Control-Request-Private-Network": "true",
      },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    expect(response.headers.get("access-control-allow-methods")).toContain("POST");
    expect(response.headers.get("access-control-allow-headers")).toBe("content-type,x-api-key");
    expect(response.headers.get("access-control-allow-private-network")).toBe("true");
  });

  it("lets a page on another origin stream a run and read Content-Location and Location", async () => {
    const thread = await t.client.threads.create();
    const response = await fetch(`${t.url}/threads/${thread.thread_id}/runs/stream`, {
      method: "POST",
      headers: { Origin: "http://page.test", "Content-Type": "application/json" },
      body: JSON.stringify({ assistant_id: "configurable", input: {} }),
    });
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    const exposed = (response.headers.get("access-control-expose-headers") ?? "").toLowerCase().split(",");
    expect(exposed).toEqual(expect.arrayContaining(["content-location", "location", "x-pagination-total", "x-pagination-next"]));
    expect(response.headers.get("content-location")).toMatch(new RegExp(`^/threads/${thread.thread_id}/runs/[0-9a-f-]{36}$`));
    expect(await eventNames(response)).toContain("values");
    // Errors and the project's own routes carry the headers too.
    const missing = await fetch(`${t.url}/threads/${crypto.randomUUID()}`, { headers: { Origin: "http://page.test" } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("access-control-allow-origin")).toBe("*");
    const own = await fetch(`${t.url}/custom/ping`, { headers: { Origin: "http://page.test" } });
    expect(own.headers.get("access-control-allow-origin")).toBe("*");
  });
});

describe("http options: mount_prefix, cors, configurable_headers, disable_*", () => {
  let s: TestServer;
  let api: Client;
  beforeAll(async () => {
    s = await startServer({ configPath: STRICT });
    api = new Client({ apiUrl: `${s.url}/api`, defaultHeaders: { "x-team-id": "t1", "x-team-secret": "s", "x-other": "o", "x-api-key": "k", "user-agent": "baton-test" } });
  });
  afterAll(async () => {
    await s?.close();
  });

  it("serves the API and the project's app under the prefix; /ok stays at the root", async () => {
    const thread = await api.threads.create();
    let created: string | undefined;
    for await (const part of api.runs.stream(thread.thread_id, "configurable", { input: {}, onRunCreated: ({ run_id }) => (created = run_id) })) void part;
    expect(created).toMatch(/^[0-9a-f-]{36}$/);
    expect((await api.runs.get(thread.thread_id, created!)).status).toBe("success");
    expect(await (await fetch(`${s.url}/api/custom/ping`)).json()).toEqual({ pong: true });
    expect((await fetch(`${s.url}/custom/ping`)).status).toBe(404);
    expect((await fetch(`${s.url}/threads`, { method: "POST" })).status).toBe(404);
    expect((await fetch(`${s.url}/ok`)).status).toBe(200);
  });

  it("removes the disabled route groups, keeping /ok", async () => {
    expect(await (await fetch(`${s.url}/api/ok`)).json()).toEqual({ ok: true });
    expect((await fetch(`${s.url}/api/info`)).status).toBe(404);
    expect((await fetch(`${s.url}/api/store/items?namespace=a&key=b`)).status).toBe(404);
    expect((await fetch(`${s.url}/api/assistants/search`, { method: "POST", body: "{}" })).status).toBe(404);
    // Runs still resolve a graph id without the assistants routes.
    expect(await api.runs.wait(null, "configurable", { input: {} })).toHaveProperty("seen");
  });

  it("copies only the headers configurable_headers lets through (excludes win)", async () => {
    const out = (await api.runs.wait(null, "configurable", { input: {} })) as Seen;
    expect(out.seen).toMatchObject({ "x-team-id": "t1", "user-agent": "baton-test", "x-api-key": "k" });
    expect(out.seen).not.toHaveProperty("x-team-secret");
    expect(out.seen).not.toHaveProperty("x-other");
  });

  it("allows the configured origins only, with credentials, methods, headers and max age", async () => {
    const preflight = (origin: string) =>
      fetch(`${s.url}/api/runs/stream`, {
        method: "OPTIONS",
        headers: { Origin: origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type", "Access-Control-Request-Private-Network": "true" },
      });
    for (const origin of ["http://allowed.test", "https://abc.studio.test"]) {
      const r = await preflight(origin);
      expect(r.status).toBe(204);
      expect(r.headers.get("access-control-allow-origin")).toBe(origin);
      expect(r.headers.get("access-control-allow-credentials")).toBe("true");
      expect(r.headers.get("access-control-allow-methods")).toBe("GET,POST");
      expect(r.headers.get("access-control-allow-headers")).toBe("content-type,x-team-id");
      expect(r.headers.get("access-control-max-age")).toBe("60");
      expect(r.headers.get("access-control-allow-private-network")).toBe("true");
      expect(r.headers.get("vary")).toContain("Origin");
    }
    for (const origin of ["http://evil.test", "https://abc.studio.test.evil.test"]) {
      const r = await preflight(origin);
      expect(r.headers.get("access-control-allow-origin")).toBeNull();
      expect(r.headers.get("access-control-allow-private-network")).toBeNull();
    }
    const thread = await api.threads.create();
    const response = await fetch(`${s.url}/api/threads/${thread.thread_id}/runs`, {
      method: "POST",
      headers: { Origin: "http://allowed.test", "Content-Type": "application/json" },
      body: JSON.stringify({ assistant_id: "configurable", input: {} }),
    });
    expect(response.headers.get("access-control-allow-origin")).toBe("http://allowed.test");
    const exposed = (response.headers.get("access-control-expose-headers") ?? "").toLowerCase().split(",");
    expect(exposed).toEqual(expect.arrayContaining(["content-location", "location", "x-project-middleware"]));
  });
});

describe("http options refused at start", () => {
  it("names a key that is not in the official schema", async () => {
    await expect(startServer({ configPath: fixture("unknown-key.json") })).rejects.toThrow(/http\.cors\.allow_origin\b.*not a key of the official langgraph\.json schema/);
  });
  it("names http.app when it is not a Hono app", async () => {
    await expect(startServer({ configPath: fixture("not-hono.json") })).rejects.toThrow(/http\.app \(\.\/graphs\.ts:configurable\) must export a Hono app/);
  });
});
