/**
 * The hostile-value corpus (issue 11) sent through every stored body field,
 * every filter, every id and every namespace. Each answer must be either
 * 2xx with the value stored faithfully (read back and compared), or 4xx with
 * a `detail` and nothing changed (a full listing compared before and after);
 * never a 5xx. After each case, another client's ordinary searches still
 * answer, and answer right (no poison record). Filters are checked against
 * JSON containment computed here over the records this file stored.
 */
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.ts";

// ---------------------------------------------------------------- the corpus

interface Hostile {
  name: string;
  /** The value as JSON text, sent as is. */
  raw: string;
  /** What a faithful store reads back; undefined: JSON cannot hold it faithfully (it must be refused). */
  expected?: unknown;
  /** A string, usable as a key, an id and a namespace element. */
  text?: string;
}

const str = (name: string, text: string): Hostile => ({ name, raw: JSON.stringify(text), expected: text, text });
const json = (name: string, raw: string): Hostile => ({ name, raw, expected: JSON.parse(raw) as unknown });
const deep = (levels: number, kind: "array" | "object") =>
  kind === "array" ? "[".repeat(levels) + "]".repeat(levels) : '{"a":'.repeat(levels) + "1" + "}".repeat(levels);

const STRINGS: Hostile[] = [
  str("lone high surrogate", "\ud800"),
  str("lone low surrogate inside", "a\udc00b"),
  str("reversed surrogate pair", "\udc00\ud800"),
  str("NUL", "a\u0000b"),
  str("quotes", `'"'`),
  str("backslashes", "\\\\a\\"),
  str("JSON path", "$.a[0]"),
  str("escaped-looking key", "a\\u0041"),
  str("dot dot", ".."),
  str("dotted", "a.b"),
  str("star", "*"),
  str("percent and underscore", "%_"),
  str("__proto__", "__proto__"),
  str("constructor", "constructor"),
  str("prototype", "prototype"),
  str("emoji", "😀👩‍👩‍👧‍👦🏳️‍🌈"),
  str("RTL", "\u202eabc\u202c \u05e9\u05dc\u05d5\u05dd"),
  str("SQL", "'; DROP TABLE threads; --"),
  str("very long (100k)", "k".repeat(100_000)),
];

const VALUES: Hostile[] = [
  ...STRINGS,
  str("5 MB string", "x".repeat(5 * 1024 * 1024)),
  { name: "deep 2000 arrays", raw: deep(2000, "array"), expected: JSON.parse(deep(2000, "array")) },
  { name: "deep 2000 objects", raw: deep(2000, "object"), expected: JSON.parse(deep(2000, "object")) },
  { name: "deep 100000 arrays", raw: deep(100_000, "array"), expected: JSON.parse(deep(100_000, "array")) },
  { name: "1e400", raw: "1e400" },
  { name: "-1e400", raw: "-1e400" },
  json("-0", "-0"),
  json("2^53+1", "9007199254740993"),
  json("1", "1"),
  json("true", "true"),
  json("null", "null"),
  json("list [1,2]", "[1,2]"),
  json("list [2]", "[2]"),
  json("object a,b", '{"a":2,"b":1}'),
  json("object b,a", '{"b":1,"a":2}'),
  json("prototype keys", '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"prototype":1}'),
  json("path keys", '{"$.a[0]":1,"a\\\\u0041":2,"..":3,"*":4,"\\"":5,"\\\\":6}'),
  { name: "duplicate keys", raw: '{"a":1,"a":2}' },
  { name: "very long key (100k)", raw: `{${JSON.stringify("k".repeat(100_000))}:1}`, expected: { ["k".repeat(100_000)]: 1 } },
  {
    name: "20,000 keys",
    raw: JSON.stringify(Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i]))),
    expected: Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i])),
  },
];

const KEYS = STRINGS.filter((h) => h.name !== "very long (100k)").concat([str("very long key (10k)", "k".repeat(10_000)), str("empty", "")]);

// ------------------------------------------------------- comparing JSON values

/** Deep equality of JSON values (numbers by value, so -0 equals 0; key order ignored); iterative, for 100,000 levels. */
function jsonEqual(a: unknown, b: unknown): boolean {
  const stack: [unknown, unknown][] = [[a, b]];
  while (stack.length > 0) {
    const [x, y] = stack.pop()!;
    if (x === y) continue;
    if (x === null || y === null || typeof x !== "object" || typeof y !== "object") return false;
    if (Array.isArray(x) !== Array.isArray(y)) return false;
    const kx = Object.keys(x);
    const ky = Object.keys(y);
    if (kx.length !== ky.length) return false;
    for (const k of kx) {
      if (!Object.prototype.hasOwnProperty.call(y, k)) return false;
      stack.push([(x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k]]);
    }
  }
  return true;
}

function depth(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    max = Math.max(max, d);
    if (v !== null && typeof v === "object") for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

/** JSON containment (Postgres `@>`, the official servers' filter semantics). */
function contains(record: unknown, filter: unknown): boolean {
  if (Array.isArray(filter)) return Array.isArray(record) && filter.every((f) => record.some((r) => contains(r, f)));
  if (filter !== null && typeof filter === "object") {
    if (record === null || typeof record !== "object" || Array.isArray(record)) return false;
    return Object.entries(filter).every(([k, f]) => Object.prototype.hasOwnProperty.call(record, k) && contains((record as Record<string, unknown>)[k], f));
  }
  return record === filter || (typeof record === "number" && typeof filter === "number" && record === filter);
}

// ------------------------------------------------------------------ the server

let t: TestServer;
/** "Another user": a client of its own, with records of its own. */
let other: { client: Client; thread: string; assistant: string };
const MARK = `hostile-${crypto.randomUUID()}`;

beforeAll(async () => {
  t = await startServer({ maxBodyBytes: 16 * 1024 * 1024 });
  const client = new Client({ apiUrl: t.url, defaultHeaders: { "x-user": "other" } });
  const thread = await client.threads.create({ metadata: { owner: "other", n: 1 } });
  const assistant = await client.assistants.create({ graphId: "echo", metadata: { owner: "other" } });
  await client.store.putItem(["other"], "k", { a: 1 });
  await client.runs.wait(thread.thread_id, "echo", { input: { messages: [{ role: "user", content: "hi" }] }, metadata: { owner: "other" } });
  other = { client, thread: thread.thread_id, assistant: assistant.assistant_id };
}, 60_000);
afterAll(async () => {
  await t?.close();
});

interface Answer {
  status: number;
  text: string;
  json: unknown;
}

async function call(method: string, path: string, body?: string, encoding?: Encoding): Promise<Answer> {
  const response = await fetch(`${t.url}${path}`, { method, ...encoded(body, encoding) });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: response.status, text, json: parsed };
}

/**
 * How a body is sent: as UTF-8 JSON, or as what must be refused because
 * Baton could not store it faithfully: bytes that are not UTF-8 (0xFF, a
 * lone surrogate's bytes, overlong NUL) or a declared Latin-1 charset.
 */
type Encoding = "invalid UTF-8 (0xFF)" | "surrogate bytes (ED A0 80)" | "overlong NUL (C0 80)" | "charset=iso-8859-1";
const ENCODED: Record<Encoding, number[]> = {
  "invalid UTF-8 (0xFF)": [0xff],
  "surrogate bytes (ED A0 80)": [0xed, 0xa0, 0x80],
  "overlong NUL (C0 80)": [0xc0, 0x80],
  // "é" in Latin-1: stored faithfully only if read as Latin-1.
  "charset=iso-8859-1": [0xe9],
};

/** The placeholder, inside a body's JSON string, where an encoding's bytes go. */
const BYTES = "@bytes@";

function encoded(body: string | undefined, encoding: Encoding | undefined): { headers: Record<string, string>; body?: string | Uint8Array<ArrayBuffer> } {
  if (body === undefined) return { headers: {} };
  if (encoding === undefined) return { headers: { "Content-Type": "application/json" }, body };
  if (encoding === "charset=iso-8859-1") return { headers: { "Content-Type": "application/json; charset=iso-8859-1" }, body: body.replace(BYTES, "caf\u00e9") };
  const [before, after] = body.split(BYTES) as [string, string];
  const utf8 = (text: string) => [...new TextEncoder().encode(text)];
  return { headers: { "Content-Type": "application/json" }, body: new Uint8Array([...utf8(before), ...ENCODED[encoding], ...utf8(after)]) };
}

/** Everything a request could have changed, as any client lists it. */
async function listing(): Promise<unknown> {
  const threads = await call("POST", "/threads/search", JSON.stringify({ limit: 1000, sort_by: "thread_id", sort_order: "asc" }));
  const assistants = await call("POST", "/assistants/search", JSON.stringify({ limit: 1000, sort_by: "assistant_id", sort_order: "asc" }));
  const items = await call("POST", "/store/items/search", JSON.stringify({ namespace_prefix: [], limit: 1000 }));
  const namespaces = await call("POST", "/store/namespaces", JSON.stringify({ limit: 1000 }));
  return { threads: threads.json, assistants: assistants.json, items: items.json, namespaces: namespaces.json };
}

/** The other user's ordinary searches: they answer, and answer exactly its records. */
async function otherUserStillWorks(): Promise<string | undefined> {
  try {
    const { client } = other;
    const threads = await client.threads.search({ metadata: { owner: "other" } });
    if (threads.map((x) => x.thread_id).join() !== other.thread) return `threads.search found ${threads.length} threads`;
    if ((await client.threads.count({ metadata: { owner: "other" } })) !== 1) return "threads.count is not 1";
    const assistants = await client.assistants.search({ metadata: { owner: "other" } });
    if (assistants.map((x) => x.assistant_id).join() !== other.assistant) return `assistants.search found ${assistants.length}`;
    const items = await client.store.searchItems(["other"], { filter: { a: 1 } });
    if (items.items.length !== 1) return `store search found ${items.items.length}`;
    const history = await client.threads.getHistory(other.thread, { metadata: { owner: "other" } });
    if (history.length === 0) return "history filtered by metadata found nothing";
    return undefined;
  } catch (error) {
    return `failed: ${String(error).slice(0, 300)}`;
  }
}

// ------------------------------------------------------------------- the cases

interface Case {
  /** Sink and corpus entry, e.g. "thread metadata value / NUL". */
  name: string;
  method: string;
  path: string;
  body?: string;
  encoding?: Encoding;
  /** Reads back what a 2xx stored, for comparison with `expected`. */
  readBack?: (answer: Answer) => Promise<unknown>;
  /** A 2xx must store this (undefined: the value cannot be stored faithfully, so only a 4xx is right). */
  expected?: unknown;
  /** Searches and counts: a 2xx changes nothing either (the listing is not taken again). */
  readOnly?: boolean;
  /** For filters: the records the answer must hold (ids), checked on a 2xx. */
  matches?: (answer: Answer) => { got: string[]; want: string[] };
}

/** Runs a case by the rule above; the failure, or undefined. */
/** The listing as of the end of the last case, while nothing may have changed since. */
let current: unknown;

async function run(c: Case): Promise<string | undefined> {
  const before = current ?? (await listing());
  current = before;
  const answer = await call(c.method, c.path, c.body, c.encoding);
  const what = `${c.method} ${c.path}${c.body === undefined ? "" : ` ${c.body.length > 160 ? `${c.body.slice(0, 157)}… (${c.body.length} chars)` : c.body}`}${c.encoding ? ` [${c.encoding}]` : ""}`;
  const got = `${answer.status} ${answer.text.slice(0, 300)}`;
  let failure: string | undefined;
  if (answer.status >= 200 && answer.status < 300) {
    if (c.readBack !== undefined) {
      if (!("expected" in c) || c.expected === undefined) failure = `accepted a value JSON cannot hold faithfully: ${what} -> ${got}`;
      else {
        const stored = await c.readBack(answer);
        if (!jsonEqual(stored, c.expected)) failure = `stored unfaithfully: ${what} -> ${got}; read back ${JSON.stringify(stored)?.slice(0, 200)}`;
      }
    }
    if (c.encoding !== undefined && c.readBack === undefined) failure = `accepted a body that is not UTF-8: ${what} -> ${got}`;
    if (failure === undefined && c.matches !== undefined) {
      const m = c.matches(answer);
      if (m.got.slice().sort().join() !== m.want.slice().sort().join()) failure = `filter answered ${m.got.length} records, containment gives ${m.want.length}: ${what} -> ${got}`;
    }
  } else if (answer.status >= 400 && answer.status < 500) {
    const detail = (answer.json as { detail?: unknown } | undefined)?.detail;
    if (typeof detail !== "string" || detail === "") failure = `4xx without a detail: ${what} -> ${got}`;
    else {
      current = await listing();
      if (!jsonEqual(before, current)) failure = `refused but changed something: ${what} -> ${got}`;
    }
  } else failure = `${answer.status >= 500 ? "5xx" : "unexpected status"}: ${what} -> ${got}`;
  if (answer.status < 400 && !c.readOnly && c.method !== "GET") current = undefined;
  const poisoned = await otherUserStillWorks();
  if (poisoned !== undefined) failure = `${failure ?? `after ${what} -> ${got}`}; then another client's search ${poisoned}`;
  return failure === undefined ? undefined : `${c.name}: ${failure}`;
}


async function runAll(cases: Case[]): Promise<void> {
  const failures: string[] = [];
  current = undefined;
  for (const c of cases) {
    const failure = await run(c);
    if (failure !== undefined) failures.push(failure);
  }
  expect(failures).toEqual([]);
}

// Records stored faithfully so far, for the filters' expected answers.
const storedThreads: { id: string; metadata: Record<string, unknown> }[] = [];
const storedAssistants: { id: string; metadata: Record<string, unknown> }[] = [];
const storedItems: { key: string; value: Record<string, unknown> }[] = [];

const enc = encodeURIComponent;
/** Percent-encoded, dots too (so `..` reaches the server as an id, not as a step up the path). */
const safePath = (text: string) => {
  try {
    return enc(text).replaceAll(".", "%2E");
  } catch {
    // A lone surrogate has no UTF-8 form: send its three bytes (invalid UTF-8) as they would arrive from a careless client.
    return [...text].map((ch) => {
      const code = ch.codePointAt(0)!;
      return code >= 0xd800 && code <= 0xdfff ? [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join("") : enc(ch).replaceAll(".", "%2E");
    }).join("");
  }
};

describe("hostile values", () => {
  // Decoys: records a filter that splices keys into a JSON path, or compares loosely, would match wrongly.
  beforeAll(async () => {
    const decoy = { suite: MARK, decoy: true, aA: 1, a: { b: 1, "0": 1 }, b: 1, v: 1, $: { a: [1] } };
    const thread = await call("POST", "/threads", JSON.stringify({ metadata: decoy }));
    storedThreads.push({ id: (thread.json as { thread_id: string }).thread_id, metadata: decoy });
    const assistant = await call("POST", "/assistants", JSON.stringify({ graph_id: "echo", metadata: decoy }));
    storedAssistants.push({ id: (assistant.json as { assistant_id: string }).assistant_id, metadata: decoy });
    await call("PUT", "/store/items", JSON.stringify({ namespace: ["hostile"], key: "decoy", value: decoy }));
    storedItems.push({ key: "decoy", value: decoy });
  });

  it("thread metadata: values and keys", { timeout: 600_000 }, async () => {
    const cases: Case[] = [];
    const add = (name: string, raw: string, expected: unknown) =>
      cases.push({
        name,
        method: "POST",
        path: "/threads",
        body: `{"metadata":{"suite":${JSON.stringify(MARK)},"case":${JSON.stringify(name)},${raw}}}`,
        expected,
        readBack: async (a) => {
          const id = (a.json as { thread_id: string }).thread_id;
          const metadata = ((await call("GET", `/threads/${id}`)).json as { metadata: Record<string, unknown> }).metadata;
          const { suite: _s, case: _c, ...rest } = metadata;
          if (jsonEqual(rest, expected)) storedThreads.push({ id, metadata });
          return rest;
        },
      });
    for (const h of VALUES) add(`thread metadata value / ${h.name}`, `"v":${h.raw}`, h.expected === undefined ? undefined : { v: h.expected });
    for (const k of KEYS) add(`thread metadata key / ${k.name}`, `${k.raw}:1`, { [k.text!]: 1 });
    // Bytes that are not UTF-8 can only be stored by changing them (U+FFFD): they must be refused.
    for (const encoding of Object.keys(ENCODED) as Encoding[]) {
      cases.push({
        name: `thread metadata value / ${encoding}`,
        method: "POST",
        path: "/threads",
        body: `{"metadata":{"suite":${JSON.stringify(MARK)},"v":"a${BYTES}b"}}`,
        encoding,
        expected: encoding === "charset=iso-8859-1" ? "a\u00e9b" : undefined,
        readBack: async (a) => ((await call("GET", `/threads/${(a.json as { thread_id: string }).thread_id}`)).json as { metadata: { v?: unknown } }).metadata.v,
      });
      if (encoding === "charset=iso-8859-1") continue;
      cases.push({ name: `thread metadata key / ${encoding}`, method: "POST", path: "/threads", body: `{"metadata":{"suite":${JSON.stringify(MARK)},"a${BYTES}b":1}}`, encoding });
      cases.push({ name: `store value / ${encoding}`, method: "PUT", path: "/store/items", body: `{"namespace":["hostile"],"key":"bytes","value":{"v":"a${BYTES}b"}}`, encoding });
      cases.push({ name: `store namespace / ${encoding}`, method: "PUT", path: "/store/items", body: `{"namespace":["hostile-bytes","a${BYTES}b"],"key":"k","value":{}}`, encoding });
      cases.push({ name: `thread search filter / ${encoding}`, method: "POST", path: "/threads/search", body: `{"metadata":{"a${BYTES}b":1}}`, encoding, readOnly: true });
    }
    await runAll(cases);
  });

  it("thread metadata: PATCH", { timeout: 600_000 }, async () => {
    const cases: Case[] = [];
    for (const h of VALUES) {
      const created = await call("POST", "/threads", JSON.stringify({ metadata: { patched: true } }));
      const id = (created.json as { thread_id: string }).thread_id;
      cases.push({
        name: `thread PATCH metadata / ${h.name}`,
        method: "PATCH",
        path: `/threads/${id}`,
        body: `{"metadata":{"v":${h.raw}}}`,
        expected: h.expected === undefined ? undefined : { patched: true, v: h.expected },
        readBack: async () => ((await call("GET", `/threads/${id}`)).json as { metadata: unknown }).metadata,
      });
    }
    await runAll(cases);
  });

  it("assistant metadata, config and context", { timeout: 600_000 }, async () => {
    const cases: Case[] = [];
    for (const h of VALUES) {
      for (const field of ["metadata", "config", "context"] as const) {
        const body =
          field === "metadata"
            ? `{"graph_id":"echo","metadata":{"suite":${JSON.stringify(MARK)},"v":${h.raw}}}`
            : field === "config"
              ? `{"graph_id":"echo","config":{"configurable":{"v":${h.raw}}}}`
              : `{"graph_id":"echo","context":{"v":${h.raw}}}`;
        cases.push({
          name: `assistant ${field} / ${h.name}`,
          method: "POST",
          path: "/assistants",
          body,
          expected: h.expected === undefined ? undefined : h.expected,
          readBack: async (a) => {
            const id = (a.json as { assistant_id: string }).assistant_id;
            const record = (await call("GET", `/assistants/${id}`)).json as { metadata: Record<string, unknown>; config: { configurable?: Record<string, unknown> }; context: Record<string, unknown> };
            const value = field === "metadata" ? record.metadata.v : field === "config" ? record.config.configurable?.v : record.context.v;
            if (field === "metadata" && jsonEqual(value, h.expected)) storedAssistants.push({ id, metadata: record.metadata });
            return value;
          },
        });
      }
    }
    for (const k of KEYS) {
      cases.push({
        name: `assistant metadata key / ${k.name}`,
        method: "POST",
        path: "/assistants",
        body: `{"graph_id":"echo","metadata":{"suite":${JSON.stringify(MARK)},${k.raw}:1}}`,
        expected: 1,
        readBack: async (a) => {
          const id = (a.json as { assistant_id: string }).assistant_id;
          const metadata = ((await call("GET", `/assistants/${id}`)).json as { metadata: Record<string, unknown> }).metadata;
          if (metadata[k.text!] === 1) storedAssistants.push({ id, metadata });
          return Object.prototype.hasOwnProperty.call(metadata, k.text!) ? metadata[k.text!] : undefined;
        },
      });
    }
    await runAll(cases);
  });

  it("store values, keys and namespaces", { timeout: 600_000 }, async () => {
    const cases: Case[] = [];
    const get = async (namespace: string[], key: string) =>
      (await call("GET", `/store/items?namespace=${safePath(namespace.join("."))}&key=${safePath(key)}`)).json as { value?: unknown } | null;
    VALUES.forEach((h, i) => {
      const key = `value-${i}`;
      cases.push({
        name: `store value / ${h.name}`,
        method: "PUT",
        path: "/store/items",
        body: `{"namespace":["hostile"],"key":${JSON.stringify(key)},"value":{"v":${h.raw}}}`,
        expected: h.expected === undefined ? undefined : { v: h.expected },
        readBack: async () => {
          const value = (await get(["hostile"], key))?.value;
          if (jsonEqual(value, { v: h.expected })) storedItems.push({ key, value: value as Record<string, unknown> });
          return value;
        },
      });
    });
    KEYS.forEach((k, i) => {
      cases.push({
        name: `store value key / ${k.name}`,
        method: "PUT",
        path: "/store/items",
        body: `{"namespace":["hostile"],"key":"key-${i}","value":{${k.raw}:1}}`,
        expected: { [k.text!]: 1 },
        readBack: async () => {
          const value = (await get(["hostile"], `key-${i}`))?.value;
          if (jsonEqual(value, { [k.text!]: 1 })) storedItems.push({ key: `key-${i}`, value: value as Record<string, unknown> });
          return value;
        },
      });
      // The item key is an id: it reads back by search (GET's query form cannot carry every string).
      cases.push({
        name: `store item key / ${k.name}`,
        method: "PUT",
        path: "/store/items",
        body: `{"namespace":["hostile-keys"],"key":${k.raw},"value":{"n":${i}}}`,
        expected: k.text,
        readBack: async () => {
          const found = (await call("POST", "/store/items/search", JSON.stringify({ namespace_prefix: ["hostile-keys"], filter: { n: i }, limit: 10 }))).json as { items: { key: string }[] };
          return found.items.map((item) => item.key).find((key) => key === k.text) ?? found.items.map((item) => item.key).join();
        },
      });
      // A namespace element (GET's dotted form cannot carry a "." or every string: read back by search).
      cases.push({
        name: `store namespace / ${k.name}`,
        method: "PUT",
        path: "/store/items",
        body: `{"namespace":["hostile-ns",${k.raw}],"key":"k","value":{"n":${i}}}`,
        expected: ["hostile-ns", k.text],
        readBack: async () => {
          const found = (await call("POST", "/store/items/search", JSON.stringify({ namespace_prefix: ["hostile-ns", k.text], limit: 10 }))).json as { items: { namespace: string[] }[] };
          return found.items.find((item) => jsonEqual(item.namespace, ["hostile-ns", k.text]))?.namespace ?? found.items.map((item) => item.namespace);
        },
      });
      cases.push({ name: `store namespace prefix / ${k.name}`, method: "POST", path: "/store/items/search", body: `{"namespace_prefix":[${k.raw}],"limit":5}`, readOnly: true });
      cases.push({ name: `store list namespaces prefix / ${k.name}`, method: "POST", path: "/store/namespaces", body: `{"prefix":[${k.raw}],"limit":5}`, readOnly: true });
      cases.push({ name: `store get namespace / ${k.name}`, method: "GET", path: `/store/items?namespace=${safePath(k.text!)}&key=k`, readOnly: true });
    });
    await runAll(cases);
  });

  it("state updates", { timeout: 600_000 }, async () => {
    const cases: Case[] = [];
    for (const h of VALUES) {
      // `ask` keeps its `answer` channel as the last value written: any JSON value.
      const created = await call("POST", "/threads", JSON.stringify({ metadata: { graph_id: "ask" } }));
      const id = (created.json as { thread_id: string }).thread_id;
      cases.push({
        name: `state update values / ${h.name}`,
        method: "POST",
        path: `/threads/${id}/state`,
        body: `{"values":{"answer":${h.raw}},"as_node":"ask"}`,
        expected: h.expected,
        readBack: async () => ((await call("GET", `/threads/${id}/state`)).json as { values: { answer: unknown } }).values.answer,
      });
    }
    await runAll(cases);
  });

  it("run metadata, config and context", { timeout: 600_000 }, async () => {
    const cases: Case[] = [];
    const thread = ((await call("POST", "/threads", "{}")).json as { thread_id: string }).thread_id;
    for (const h of VALUES) {
      for (const field of ["metadata", "config", "context"] as const) {
        const extra = field === "metadata" ? `"metadata":{"v":${h.raw}}` : field === "config" ? `"config":{"configurable":{"v":${h.raw}}}` : `"context":{"v":${h.raw}}`;
        cases.push({
          name: `run ${field} / ${h.name}`,
          method: "POST",
          path: `/threads/${thread}/runs/wait`,
          body: `{"assistant_id":"echo","input":{"messages":[{"role":"user","content":"hi"}]},${extra}}`,
          expected: h.expected,
          readBack: async () => {
            const runs = (await call("GET", `/threads/${thread}/runs?limit=1`)).json as Record<string, Record<string, Record<string, unknown>>>[];
            const run = runs[0]!;
            const kwargs = run.kwargs as { config?: { configurable?: Record<string, unknown> }; context?: Record<string, unknown> } | undefined;
            return field === "metadata" ? run.metadata!.v : field === "config" ? kwargs?.config?.configurable?.v : kwargs?.context?.v;
          },
        });
      }
    }
    await runAll(cases);
  });

  it("filters: thread, assistant, store and history searches", { timeout: 600_000 }, async () => {
    const cases: Case[] = [];
    const filters: { name: string; raw: string; value?: unknown }[] = [
      ...VALUES.map((h) => ({ name: `value ${h.name}`, raw: `{"v":${h.raw}}`, value: h.expected === undefined ? undefined : { v: h.expected } })),
      ...KEYS.map((k) => ({ name: `key ${k.name}`, raw: `{${k.raw}:1}`, value: { [k.text!]: 1 } })),
    ];
    const ids = (a: Answer, field: string) => (Array.isArray(a.json) ? (a.json as Record<string, string>[]).map((r) => r[field]!) : []);
    const want = (records: { id: string; metadata: Record<string, unknown> }[], filter: unknown) =>
      filter === undefined || depth(filter) > 1000 ? [] : records.filter((r) => contains(r.metadata, filter)).map((r) => r.id);
    for (const f of filters) {
      const withSuite = `{"suite":${JSON.stringify(MARK)},${f.raw.slice(1)}`;
      const filterWithSuite = f.value === undefined ? undefined : { suite: MARK, ...(f.value as object) };
      cases.push({
        name: `thread search metadata / ${f.name}`,
        method: "POST",
        path: "/threads/search",
        body: `{"metadata":${withSuite},"limit":1000}`,
        readOnly: true,
        matches: (a) => ({ got: ids(a, "thread_id"), want: want(storedThreads, filterWithSuite) }),
      });
      cases.push({
        name: `thread count metadata / ${f.name}`,
        method: "POST",
        path: "/threads/count",
        body: `{"metadata":${withSuite}}`,
        readOnly: true,
        matches: (a) => ({ got: Array.from({ length: Number(a.json) }, () => "x"), want: want(storedThreads, filterWithSuite).map(() => "x") }),
      });
      // Thread values hold messages here: no thread has a top-level key of the corpus.
      cases.push({
        name: `thread search values / ${f.name}`,
        method: "POST",
        path: "/threads/search",
        body: `{"values":${f.raw},"metadata":{"suite":${JSON.stringify(MARK)}},"limit":1000}`,
        readOnly: true,
        matches: (a) => ({ got: ids(a, "thread_id"), want: [] }),
      });
      cases.push({
        name: `assistant search metadata / ${f.name}`,
        method: "POST",
        path: "/assistants/search",
        body: `{"metadata":${withSuite},"limit":1000}`,
        readOnly: true,
        matches: (a) => ({ got: ids(a, "assistant_id"), want: want(storedAssistants, filterWithSuite) }),
      });
      cases.push({
        name: `assistant count metadata / ${f.name}`,
        method: "POST",
        path: "/assistants/count",
        body: `{"metadata":${withSuite}}`,
        readOnly: true,
        matches: (a) => ({ got: Array.from({ length: Number(a.json) }, () => "x"), want: want(storedAssistants, filterWithSuite).map(() => "x") }),
      });
      cases.push({
        name: `store search filter / ${f.name}`,
        method: "POST",
        path: "/store/items/search",
        body: `{"namespace_prefix":["hostile"],"filter":${f.raw},"limit":1000}`,
        readOnly: true,
        matches: (a) => ({
          got: ((a.json as { items?: { key: string }[] }).items ?? []).map((i) => i.key),
          want: want(storedItems.map((i) => ({ id: i.key, metadata: i.value })), f.value),
        }),
      });
      cases.push({
        name: `history metadata filter / ${f.name}`,
        method: "POST",
        path: `/threads/${other.thread}/history`,
        body: `{"metadata":${f.raw},"limit":100}`,
        // The other user's checkpoints carry its run's metadata ({owner}), none of the corpus.
        readOnly: true,
        matches: (a) => ({ got: ids(a, "created_at"), want: [] }),
      });
    }
    await runAll(cases);
  });

  it("ids in paths and bodies", { timeout: 600_000 }, async () => {
    const cases: Case[] = [];
    const thread = ((await call("POST", "/threads", "{}")).json as { thread_id: string }).thread_id;
    for (const k of KEYS) {
      const p = safePath(k.text!);
      for (const [method, path] of [
        ["GET", `/threads/${p}`],
        ["PATCH", `/threads/${p}`],
        ["DELETE", `/threads/${p}`],
        ["GET", `/threads/${p}/state`],
        ["POST", `/threads/${p}/runs`],
        ["GET", `/assistants/${p}`],
        ["PATCH", `/assistants/${p}`],
        ["DELETE", `/assistants/${p}`],
        ["GET", `/threads/${thread}/runs/${p}`],
        ["GET", `/threads/${thread}/state/${p}`],
      ] as const) {
        // An unknown graph: a path the URL parser resolves elsewhere (`%2E%2E` is `..`) must not start a run that changes the listing later.
        const body = method === "GET" || method === "DELETE" ? undefined : method === "POST" ? '{"assistant_id":"no-such-graph"}' : '{"metadata":{"x":1}}';
        cases.push({ name: `path id ${method} ${path.replace(p, "{id}")} / ${k.name}`, method, path, body });
      }
      cases.push({ name: `body thread_id / ${k.name}`, method: "POST", path: "/threads", body: `{"thread_id":${k.raw}}` });
      cases.push({
        name: `body ids filter / ${k.name}`,
        method: "POST",
        path: "/threads/search",
        body: `{"ids":[${k.raw}]}`,
        readOnly: true,
        matches: (a) => ({ got: Array.isArray(a.json) ? (a.json as { thread_id: string }[]).map((r) => r.thread_id) : [], want: [] }),
      });
      cases.push({ name: `body assistant_id of a run / ${k.name}`, method: "POST", path: `/threads/${thread}/runs`, body: `{"assistant_id":${k.raw}}` });
      cases.push({ name: `body checkpoint_id of a state update / ${k.name}`, method: "POST", path: `/threads/${thread}/state`, body: `{"values":{},"checkpoint":{"checkpoint_id":${k.raw}}}` });
      cases.push({ name: `body run_ids of a cancel / ${k.name}`, method: "POST", path: "/runs/cancel", body: `{"thread_id":"${thread}","run_ids":[${k.raw}]}` });
    }
    await runAll(cases);
  });
});
