/**
 * The HTTP edge under hostile input (issue 11, findings 2, 4, 8, 10, 12, 13):
 * what cannot be stored faithfully, or would hurt a later request, is refused
 * with a 4xx naming what to fix, and changes nothing (counted before and
 * after). Byte-level requests go through node:http, which sends exactly the
 * bytes and headers given (Host included); the rest through the official SDK.
 *
 * Run against a project with its own http.app (whose middleware sees the
 * body first) and one without, since the body is read differently.
 */
import { request } from "node:http";
import { join } from "node:path";
import fc from "fast-check";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorResponse } from "../../src/http/errors.ts";
import { hostAllowed, hostName } from "../../src/http/app.ts";
import { MalformedJson, parseJsonText } from "../../src/http/json.ts";
import { FIXTURES, startServer, type TestServer } from "../helpers/server.ts";

const NO_APP = join(import.meta.dirname, "../fixtures/differential/langgraph.json");
const HTTP_APP = join(import.meta.dirname, "../fixtures/http/langgraph.json");

interface Answer {
  status: number;
  detail: string;
  json: unknown;
  headers: Record<string, string | string[] | undefined>;
}

/** One request with exactly these bytes and headers (no Content-Type unless given). */
function raw(url: string, method: string, path: string, options: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Answer> {
  const target = new URL(path, url);
  return new Promise((resolve, reject) => {
    const req = request(target, { method, headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          // not JSON: the detail is the text
        }
        const detail = (json as { detail?: unknown } | undefined)?.detail;
        resolve({ status: res.statusCode ?? 0, detail: typeof detail === "string" ? detail : text, json, headers: res.headers });
      });
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

const JSON_TYPE = { "Content-Type": "application/json" };

describe.each([
  { project: "with an http.app", config: FIXTURES, graph: "echo" },
  { project: "without an http.app", config: NO_APP, graph: "chat" },
])("hostile input, $project", ({ config, graph }) => {
  let t: TestServer;
  const post = (path: string, body: string | Buffer, headers: Record<string, string> = JSON_TYPE) => raw(t.url, "POST", path, { headers, body });
  const threadCount = () => t.client.threads.count();

  beforeAll(async () => {
    t = await startServer({ configPath: config });
  });
  afterAll(async () => {
    await t.close();
  });

  describe("content type and encoding", () => {
    it("refuses a text/plain body with 415 and creates no run (a cross-site form needs no preflight for it)", async () => {
      const thread = await t.client.threads.create();
      const body = JSON.stringify({ assistant_id: graph, input: { messages: [] } });
      const r = await post(`/threads/${thread.thread_id}/runs`, body, { "Content-Type": "text/plain" });
      expect(r.status).toBe(415);
      expect(r.detail).toMatch(/Content-Type: application\/json/);
      expect(r.detail).toMatch(/text\/plain/);
      expect(await t.client.runs.list(thread.thread_id)).toEqual([]);
    });

    it("refuses a body with no content type with 415, and accepts application/<x>+json", async () => {
      const before = await threadCount();
      const r = await post("/threads", JSON.stringify({ metadata: { k: 1 } }), {});
      expect(r.status).toBe(415);
      expect(r.detail).toMatch(/none was given/);
      expect(await threadCount()).toBe(before);
      const ok = await post("/threads", JSON.stringify({ metadata: { k: 1 } }), { "Content-Type": "application/merge-patch+json; charset=UTF-8" });
      expect(ok.status).toBe(200);
      expect(await threadCount()).toBe(before + 1);
    });

    it("still reads an empty body with no content type as {}", async () => {
      const before = await threadCount();
      const r = await raw(t.url, "POST", "/threads");
      expect(r.status).toBe(200);
      expect(await threadCount()).toBe(before + 1);
    });

    it("refuses a declared charset other than UTF-8 with 415", async () => {
      const before = await threadCount();
      const r = await post("/threads", Buffer.from(JSON.stringify({ metadata: { name: "caf\u00e9" } }), "latin1"), { "Content-Type": "application/json; charset=latin1" });
      expect(r.status).toBe(415);
      expect(r.detail).toMatch(/charset=latin1/);
      expect(r.detail).toMatch(/UTF-8/);
      expect(await threadCount()).toBe(before);
    });

    it("refuses invalid UTF-8 bytes with 400 instead of turning them into U+FFFD", async () => {
      const before = await threadCount();
      const bytes = Buffer.concat([Buffer.from('{"metadata":{"name":"caf'), Buffer.from([0xe9]), Buffer.from('"}}')]);
      const r = await post("/threads", bytes);
      expect(r.status).toBe(400);
      expect(r.detail).toMatch(/not valid UTF-8/);
      expect(await threadCount()).toBe(before);
    });

    it("refuses malformed JSON with 400, as the official server does", async () => {
      const before = await threadCount();
      const r = await post("/threads", '{"metadata": {');
      expect(r.status).toBe(400);
      expect(r.detail).toMatch(/not valid JSON/);
      expect(await threadCount()).toBe(before);
    });
  });

  describe("values that cannot be stored faithfully", () => {
    it("refuses 10,000 levels of nesting naming the limit and its option, and 100,000 without harm", async () => {
      const before = await threadCount();
      for (const depth of [10_000, 100_000]) {
        const r = await post("/threads", `{"metadata":${'{"a":'.repeat(depth)}1${"}".repeat(depth)}}`);
        expect(r.status).toBe(422);
        expect(r.detail).toMatch(/^metadata\.a\.a.*nested deeper than 100 levels/);
        expect(r.detail).toMatch(/maxJsonDepth \/ BATON_MAX_JSON_DEPTH/);
      }
      const arrays = await raw(t.url, "PUT", "/store/items", { headers: JSON_TYPE, body: `{"namespace":["n"],"key":"k","value":{"v":${"[".repeat(5000)}${"]".repeat(5000)}}}` });
      expect(arrays.status).toBe(422);
      expect(arrays.detail).toMatch(/^value\.v\[0\]\[0\].*nested deeper than 100 levels/);
      expect(await threadCount()).toBe(before);
      expect((await t.client.store.searchItems(["n"])).items).toEqual([]);
      // Search with a metadata filter still answers for everyone.
      expect(await t.client.threads.search({ metadata: { a: 1 } })).toEqual([]);
    });

    it("accepts nesting up to the limit", async () => {
      const nested = `${'{"a":'.repeat(98)}1${"}".repeat(98)}`;
      const r = await post("/threads", `{"metadata":${nested}}`);
      expect(r.status).toBe(200);
      const { thread_id } = r.json as { thread_id: string };
      expect((await t.client.threads.get(thread_id)).metadata).toMatchObject(JSON.parse(nested) as object);
    });

    it("refuses a number beyond a double (1e400 would become null)", async () => {
      const before = await threadCount();
      const r = await post("/threads", '{"metadata":{"n":[1,1e400]}}');
      expect(r.status).toBe(422);
      expect(r.detail).toMatch(/^metadata\.n\[1\]: number 1e400 does not fit a double/);
      expect(await threadCount()).toBe(before);
    });

    it("refuses duplicate keys (the last would silently win)", async () => {
      const before = await threadCount();
      const r = await post("/threads", '{"metadata":{"role":"user","role":"admin"}}');
      expect(r.status).toBe(422);
      expect(r.detail).toMatch(/^metadata\.role: duplicate key/);
      expect(await threadCount()).toBe(before);
    });

    it("refuses a __proto__ key (it would be dropped)", async () => {
      const before = await threadCount();
      const r = await post("/threads", '{"metadata":{"__proto__":{"admin":true}}}');
      expect(r.status).toBe(422);
      expect(r.detail).toMatch(/^metadata\.__proto__: the key "__proto__" is refused/);
      expect(await threadCount()).toBe(before);
    });

    it("refuses a lone surrogate in a value or a key, on every backend alike, and stores a complete pair faithfully", async () => {
      const before = await threadCount();
      for (const body of ['{"metadata":{"k":"a\\ud800b"}}', '{"metadata":{"k":"\\udc00"}}', '{"metadata":{"\\ud800":1}}']) {
        const r = await post("/threads", body);
        expect(r.status).toBe(422);
        expect(r.detail).toMatch(/^metadata(\.k)?: (string|key) contains a lone UTF-16 surrogate/);
      }
      const thread = await t.client.threads.create({ metadata: { k: "\ud83d\ude00" } });
      expect((await t.client.threads.get(thread.thread_id)).metadata).toMatchObject({ k: "\u{1F600}" });
      expect(await threadCount()).toBe(before + 1);
    });

    it("refuses a lone surrogate in a run's input, and creates no run", async () => {
      const thread = await t.client.threads.create();
      const r = await post(`/threads/${thread.thread_id}/runs`, `{"assistant_id":"${graph}","input":{"messages":[{"role":"user","content":"\\ud800"}]}}`);
      expect(r.status).toBe(422);
      expect(r.detail).toMatch(/^input\.messages\[0\]\.content: string contains a lone UTF-16 surrogate/);
      expect(await t.client.runs.list(thread.thread_id)).toEqual([]);
    });
  });

  describe("lists, filters and types", () => {
    it("refuses 40,000 thread ids in a search, naming the limit", async () => {
      const ids = Array.from({ length: 40_000 }, () => crypto.randomUUID());
      const r = await post("/threads/search", JSON.stringify({ ids }));
      expect(r.status).toBe(422);
      expect(r.detail).toMatch(/ids: 40000 ids, more than the limit of 1000 per request \(maxIdsPerRequest \/ BATON_MAX_IDS_PER_REQUEST\)/);
      const fine = await t.client.threads.search({ ids: ids.slice(0, 1000) });
      expect(fine).toEqual([]);
    });

    it("refuses 40,000 run ids to cancel", async () => {
      const thread = await t.client.threads.create();
      const r = await post("/runs/cancel", JSON.stringify({ thread_id: thread.thread_id, run_ids: Array.from({ length: 40_000 }, () => crypto.randomUUID()) }));
      expect(r.status).toBe(422);
      expect(r.detail).toMatch(/run_ids: 40000 ids.*maxIdsPerRequest/);
    });

    it("refuses a 50,000-key filter on threads, assistants and the store, naming the limit", async () => {
      const huge = Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`k${i}`, i]));
      const r = await post("/threads/search", JSON.stringify({ metadata: huge }));
      expect(r.status).toBe(422);
      expect(r.detail).toMatch(/^metadata: object has more than 10000 keys \(maxObjectKeys \/ BATON_MAX_OBJECT_KEYS\)/);
      // Under the limit on any object's keys, the filter's own limit holds.
      const filter = Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`k${i}`, i]));
      for (const [path, body] of [
        ["/threads/search", { metadata: filter }],
        ["/threads/count", { values: filter }],
        ["/assistants/search", { metadata: filter }],
        ["/store/items/search", { namespace_prefix: ["n"], filter }],
      ] as const) {
        const r = await post(path, JSON.stringify(body));
        expect(r.status, path).toBe(422);
        expect(r.detail, path).toMatch(/filter has more than 100 keys.*\(maxFilterKeys \/ BATON_MAX_FILTER_KEYS\)/);
      }
      // Nested keys count too.
      const nested = { a: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}`, { x: i }])) };
      expect((await post("/threads/search", JSON.stringify({ metadata: nested }))).status).toBe(422);
    });

    it("refuses offset: true and limit: \"5\" in a body, and still reads ?limit=5 in a query", async () => {
      const offset = await post("/threads/search", JSON.stringify({ offset: true }));
      expect(offset.status).toBe(422);
      expect(offset.detail).toMatch(/offset: .*expected number, received boolean/);
      const limit = await post("/assistants/search", JSON.stringify({ limit: "5" }));
      expect(limit.status).toBe(422);
      expect(limit.detail).toMatch(/limit: .*expected number, received string/);
      const thread = await t.client.threads.create();
      const query = await raw(t.url, "GET", `/threads/${thread.thread_id}/runs?limit=5&offset=0`);
      expect(query.status).toBe(200);
    });

    it("refuses a webhook that is not an http(s) URL or a path of the project's app, and creates no run", async () => {
      const thread = await t.client.threads.create();
      for (const webhook of ["file:///etc/passwd", "ftp://example.com/x", "javascript:alert(1)", "not a url", "//evil.example/hook", "/\\evil.example/hook", "http:/x", " http://example.com"]) {
        const r = await post(`/threads/${thread.thread_id}/runs`, JSON.stringify({ assistant_id: graph, input: { messages: [] }, webhook }));
        expect(r.status, webhook).toBe(422);
        expect(r.detail, webhook).toMatch(/webhook: must be an absolute http:\/\/ or https:\/\/ URL, or a path starting with '\/'/);
      }
      expect(await t.client.runs.list(thread.thread_id)).toEqual([]);
    });
  });

  describe("the URL", () => {
    it("refuses the NUL character in a path or query with 422 on every backend (Postgres failed with a 500)", async () => {
      await t.client.store.putItem(["n"], "ab", { v: 1 });
      for (const path of ["/store/items?namespace=n&key=a%00b", "/store/items?namespace=n%00&key=ab", "/assistants/a%00b", `/assistants/${graph}%00/graph`]) {
        const r = await raw(t.url, "GET", path);
        expect(r.status, path).toBe(422);
        expect(r.detail, path).toMatch(/NUL character \(%00\)/);
      }
      const r = await raw(t.url, "DELETE", "/store/items?namespace=n&key=a%00b");
      expect(r.status).toBe(422);
      expect(await t.client.store.getItem(["n"], "ab")).toMatchObject({ value: { v: 1 } });
      // An escaped percent sign followed by zeros is ordinary text.
      const percent = await raw(t.url, "GET", "/store/items?namespace=n&key=a%2500b");
      expect(percent.status).toBe(200);
      expect(percent.json).toBeNull();
    });
  });

  describe("the Host header (DNS rebinding)", () => {
    it("refuses a host name not allowed with 403 naming BATON_ALLOWED_HOSTS, and changes nothing", async () => {
      const before = await threadCount();
      const r = await post("/threads", "{}", { ...JSON_TYPE, Host: "evil.example" });
      expect(r.status).toBe(403);
      expect(r.detail).toMatch(/host 'evil.example' is not allowed/);
      expect(r.detail).toMatch(/BATON_ALLOWED_HOSTS/);
      expect((await raw(t.url, "GET", "/info", { headers: { Host: "evil.example:2024" } })).status).toBe(403);
      expect(await threadCount()).toBe(before);
    });

    it("refuses a CORS preflight for that host, and answers preflights and requests for loopback names", async () => {
      const preflight = { Origin: "http://evil.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type" };
      expect((await raw(t.url, "OPTIONS", "/threads", { headers: { ...preflight, Host: "evil.example" } })).status).toBe(403);
      const port = new URL(t.url).port;
      for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, "app.localhost", "LOCALHOST."]) {
        const allowed = await raw(t.url, "OPTIONS", "/threads", { headers: { ...preflight, Origin: `http://${host}`, Host: host } });
        expect(allowed.status, host).toBe(204);
        expect(allowed.headers["access-control-allow-origin"], host).toBeDefined();
        expect((await raw(t.url, "GET", "/info", { headers: { Host: host } })).status, host).toBe(200);
      }
    });

    it("answers /ok for any host (health probes use addresses)", async () => {
      expect((await raw(t.url, "GET", "/ok", { headers: { Host: "10.0.0.7:2024" } })).status).toBe(200);
    });
  });
});

describe("configured limits and hosts", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startServer({
      configPath: NO_APP,
      maxJsonDepth: 5,
      maxStringLength: 100,
      maxObjectKeys: 10,
      maxIdsPerRequest: 3,
      maxFilterKeys: 2,
      allowedHosts: "api.example.com, .corp.example",
    });
  });
  afterAll(async () => {
    await t.close();
  });
  const post = (path: string, body: unknown, host = "api.example.com") =>
    raw(t.url, "POST", path, { headers: { ...JSON_TYPE, Host: host }, body: typeof body === "string" ? body : JSON.stringify(body) });

  it("holds each limit as configured, naming it", async () => {
    const before = await t.client.threads.count();
    const cases: [string, unknown, RegExp][] = [
      ["/threads", { metadata: { a: { b: { c: { d: { e: 1 } } } } } }, /^metadata\.a\.b\.c\.d: nested deeper than 5 levels.*maxJsonDepth/],
      ["/threads", { metadata: { s: "x".repeat(101) } }, /^metadata\.s: string of 101 characters is longer than the limit of 100 \(maxStringLength \/ BATON_MAX_STRING_LENGTH\)/],
      ["/threads", { metadata: { ["k".repeat(101)]: 1 } }, /^metadata: key of 101 characters is longer than the limit of 100/],
      ["/threads", { metadata: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, i])) }, /^metadata: object has more than 10 keys \(maxObjectKeys \/ BATON_MAX_OBJECT_KEYS\)/],
      ["/threads/search", { ids: Array.from({ length: 4 }, () => crypto.randomUUID()) }, /ids: 4 ids, more than the limit of 3/],
      ["/threads/search", { metadata: { a: { b: 1, c: 2 } } }, /metadata: filter has more than 2 keys/],
    ];
    for (const [path, body, message] of cases) {
      const r = await post(path, body);
      expect(r.status, JSON.stringify(body).slice(0, 80)).toBe(422);
      expect(r.detail).toMatch(message);
    }
    expect(await t.client.threads.count()).toBe(before);
    expect((await post("/threads/search", { ids: Array.from({ length: 3 }, () => crypto.randomUUID()), metadata: { a: 1, b: 2 } })).status).toBe(200);
  });

  it("answers the configured names, their subdomains for a leading dot, addresses and localhost, and no other name", async () => {
    for (const host of ["api.example.com", "API.example.com:443", "corp.example", "a.b.corp.example", "127.0.0.1:8123", "10.1.2.3", "[::1]:8123", "localhost"]) {
      expect((await raw(t.url, "GET", "/info", { headers: { Host: host } })).status, host).toBe(200);
    }
    for (const host of ["example.com", "evilcorp.example", "api.example.com.evil.example", "localhost.evil.example", "1.2.3.4.evil.example"]) {
      const r = await raw(t.url, "GET", "/info", { headers: { Host: host } });
      expect(r.status, host).toBe(403);
      expect(r.detail).toMatch(/now api\.example\.com, \.corp\.example\)/);
    }
  });
});

describe("a project's middleware that parses the body first", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startServer({ configPath: HTTP_APP });
  });
  afterAll(async () => {
    await t.close();
  });

  const surrogate = '{"assistant_id":"configurable","input":{"x":"\\ud800"}}';

  it("does not launder a body it changed in place: what was sent is checked, and no run is created", async () => {
    const thread = await t.client.threads.create();
    for (const body of ['{"assistant_id":"configurable","input":{},"metadata":{"a":1,"a":2}}', '{"assistant_id":"configurable","input":{"x":1e999}}', surrogate]) {
      const r = await raw(t.url, "POST", `/threads/${thread.thread_id}/runs`, { headers: { ...JSON_TYPE, "x-rewrite-body": "in-place" }, body });
      expect(r.status, body).toBe(422);
    }
    expect(await t.client.runs.list(thread.thread_id)).toEqual([]);
  });

  it("checks a new request the middleware sends instead (its own rewriting is the project's choice)", async () => {
    const thread = await t.client.threads.create();
    const r = await raw(t.url, "POST", `/threads/${thread.thread_id}/runs`, { headers: { ...JSON_TYPE, "x-rewrite-body": "replace" }, body: surrogate });
    expect(r.status).toBe(422);
    expect(r.detail).toMatch(/^input\.x: string contains a lone UTF-16 surrogate/);
    expect(await t.client.runs.list(thread.thread_id)).toEqual([]);
  });
});

describe("500 answers", () => {
  it("carry a reference, never the driver's message; the log keeps both", async () => {
    const logged: Record<string, unknown>[] = [];
    const logger = { error: (msg: string, fields: Record<string, unknown>) => logged.push({ msg, ...fields }) } as unknown as Parameters<typeof errorResponse>[2];
    const app = new Hono();
    app.onError((error, c) => errorResponse(c, error, logger));
    app.get("/boom", () => {
      throw new Error('relation "baton_threads" does not exist (postgres://baton:secret@db/baton)');
    });
    const response = await app.request("/boom");
    expect(response.status).toBe(500);
    const { detail } = (await response.json()) as { detail: string };
    expect(detail).toMatch(/^Internal error \(reference [0-9a-f-]{36};/);
    expect(detail).not.toMatch(/relation|baton_threads|secret/);
    const reference = /reference ([0-9a-f-]{36})/.exec(detail)![1];
    expect(logged).toEqual([expect.objectContaining({ msg: "http:unhandled", reference, error: expect.stringMatching(/baton_threads/) })]);
  });
});

describe("host names", () => {
  it("compares the Host header without port, case or trailing dot; IPv6 keeps its brackets", () => {
    expect(hostName("LocalHost:2024")).toBe("localhost");
    expect(hostName("[::1]:2024")).toBe("[::1]");
    expect(hostName("[::1]")).toBe("[::1]");
    expect(hostName("example.com.")).toBe("example.com");
    expect(hostAllowed("a.localhost", [".localhost"])).toBe(true);
    expect(hostAllowed("localhost", [".localhost"])).toBe(true);
    expect(hostAllowed("evillocalhost", [".localhost"])).toBe(false);
    expect(hostAllowed("[::1]", [])).toBe(true);
    expect(hostAllowed("192.168.1.20", [])).toBe(true);
    expect(hostAllowed("sub.corp.example", [".corp.example"])).toBe(true);
    expect(hostAllowed("xcorp.example", [".corp.example"])).toBe(false);
    expect(hostAllowed("1.2.3.4.nip.io", [])).toBe(false);
  });
});

describe("the JSON scanner", () => {
  const roomy = { maxJsonDepth: 10_000, maxStringLength: 1e9, maxObjectKeys: 1e9 };
  const verdict = (text: string) => {
    try {
      parseJsonText(text, roomy);
      return "read";
    } catch (error) {
      return error instanceof MalformedJson ? "malformed" : "refused";
    }
  };

  it("reads every JSON text JSON.stringify writes, refusing only what the rules name", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(undefined, 2, "\t"), (value, space) => {
        const text = JSON.stringify(value, null, space);
        const answer = verdict(text);
        expect(answer).not.toBe("malformed");
        if (answer === "refused") expect(text).toMatch(/__proto__|\\u0000|\\ud[89a-f]/i);
      }),
      { seed: 11, numRuns: 5_000 },
    );
  });

  it("calls malformed exactly what JSON.parse refuses, even when a refused value comes first", () => {
    const piece = fc.constantFrom("{", "}", "[", "]", ",", ":", '"', "\\", "a", "1", "-", ".", "e", "+", "0", " ", "\n", "true", "null", '"k"', "\\u00e9", "\\ud83d\\ude00", "\\ud800", "\u00e9", "\u0001", "tru", "1e400", '"__proto__"', "\\u0000");
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 24 }), (pieces) => {
        const text = pieces.join("");
        let parses = true;
        try {
          JSON.parse(text);
        } catch {
          parses = false;
        }
        expect(verdict(text) === "malformed", text).toBe(!parses);
      }),
      { seed: 7, numRuns: 30_000 },
    );
  });
});
