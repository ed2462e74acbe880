/**
 * The records ports' contract (assistants, threads, store items), as a suite
 * every backend must pass, so SQLite and Postgres answer every case alike:
 * client filters mean JSON containment (src/core/filter.ts, Postgres's `@>`)
 * on every filtered field, access filters (`$eq`, `$in`, `$contains`) mean
 * what `matches` says on every scoped method and never mix with them, sorting and pagination follow code-point order, counts
 * agree with searches, lists of any length are one parameter, and no stored
 * record (hostile keys, 3,000 levels deep) can break anyone's later query or
 * come back changed.
 *
 * Use: `describeRecords({ name, create })` from a test file; `create` gets a
 * clock the suite controls and returns a fresh, empty backend.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Clock } from "../core/clock.ts";
import { accessConditions, contains, matches, type Filter } from "../core/filter.ts";
import { BatonError } from "../core/errors.ts";
import type { Backend } from "../core/ports.ts";
import type { ThreadStatus } from "../core/types.ts";
import { ManualClock, newRun, succeeded } from "./fixtures.ts";
import { isoFromMs } from "../core/clock.ts";

export interface RecordsSuiteInit {
  name: string;
  create(clock: Clock): Promise<Backend> | Backend;
}

/**
 * `[document, filter, whether document @> filter]` as JSON text (parsed, so
 * keys like `__proto__` are plain own keys), each answer checked against
 * Postgres's `SELECT document::jsonb @> filter::jsonb` (test/conformance/
 * records.test.ts does so on every run).
 */
export const CONTAINMENT_CASES: readonly (readonly [document: string, filter: string, contained: boolean])[] = [
  // Empty filter; null only matches a present null.
  ['{"a":1}', "{}", true],
  ['{"a":null}', '{"a":null}', true],
  ["{}", '{"a":null}', false],
  ['{"a":1}', '{"a":null}', false],
  ['{"a":""}', '{"a":null}', false],
  // Scalars by type and value; numbers numerically.
  ['{"a":1}', '{"a":true}', false],
  ['{"a":true}', '{"a":1}', false],
  ['{"a":true}', '{"a":true}', true],
  ['{"a":0}', '{"a":false}', false],
  ['{"a":"1"}', '{"a":1}', false],
  ['{"a":1.0}', '{"a":1}', true],
  ['{"a":100}', '{"a":1e2}', true],
  ['{"a":-0}', '{"a":0}', true],
  ['{"a":1e300}', '{"a":1e300}', true],
  ['{"a":"X"}', '{"a":"x"}', false],
  // Objects: any key order, subsets, nesting lined up level by level.
  ['{"a":{"x":1,"y":2}}', '{"a":{"y":2,"x":1}}', true],
  ['{"a":{"x":1,"y":2}}', '{"a":{"y":2}}', true],
  ['{"a":{"x":1}}', '{"a":{"x":1,"y":2}}', false],
  ['{"a":{"b":1}}', '{"a":{}}', true],
  ['{"a":{"x":{"y":[1,{"z":null,"w":2}]}}}', '{"a":{"x":{"y":[{"z":null}]}}}', true],
  ['{"a":{"x":{"y":[1,{"w":2}]}}}', '{"a":{"x":{"y":[{"z":null}]}}}', false],
  // Arrays: every filter element contained by some element.
  ['{"a":[1,2,3]}', '{"a":[3,1]}', true],
  ['{"a":[1,2,3]}', '{"a":[]}', true],
  ['{"a":[1,2]}', '{"a":[1,2,4]}', false],
  ['{"a":[1]}', '{"a":[1,1,1]}', true],
  ['{"a":[1,"1",true,null]}', '{"a":[null,"1"]}', true],
  ['{"a":[1,"1",true,null]}', '{"a":[false]}', false],
  ['{"a":[false]}', '{"a":[0]}', false],
  ['{"a":["x"]}', '{"a":"x"}', false],
  ['{"a":"x"}', '{"a":["x"]}', false],
  ['{"a":[[1,2],[3]]}', '{"a":[[3]]}', true],
  ['{"a":[[1,2],[3]]}', '{"a":[[1,3]]}', false],
  ['{"a":[[1,2],[3]]}', '{"a":[[2],[3,3]]}', true],
  ['{"a":[1,2,3]}', '{"a":[[1]]}', false],
  ['{"a":[{"k":1,"j":2},{"k":3}]}', '{"a":[{"k":3},{"j":2}]}', true],
  ['{"a":[{"k":1}]}', '{"a":[{"k":1,"j":2}]}', false],
  ['{"a":[{"k":1},[{"k":1}]]}', '{"a":[[{}]]}', true],
  ['{"a":[{"k":1}]}', '{"a":[[]]}', false],
  ['{"a":{}}', '{"a":[]}', false],
  ['{"a":[]}', '{"a":{}}', false],
  ['{"a":{"0":1}}', '{"a":[1]}', false],
  // Keys are data: quotes, backslashes, escapes, path syntax, SQL.
  ['{"a\\"b":1}', '{"a\\"b":1}', true],
  ['{"a":{"b":1}}', '{"a\\"b":1}', false],
  ['{"a\\\\":1}', '{"a\\\\":1}', true],
  ['{"a":1}', '{"a\\\\":1}', false],
  ['{"aA":1}', '{"a\\\\u0041":1}', false],
  ['{"a\\\\u0041":1}', '{"a\\\\u0041":1}', true],
  ['{"aA":1}', '{"a\\u0041":1}', true],
  ['{"a.b":1}', '{"a.b":1}', true],
  ['{"a":{"b":1}}', '{"a.b":1}', false],
  ['{"$":1}', '{"$":1}', true],
  ['{"a":1}', '{"$.a":1}', false],
  ['{"a":1}', '{"$":{"a":1}}', false],
  ['{"a[0]":1}', '{"a[0]":1}', true],
  ['{"a":[1]}', '{"a[0]":1}', false],
  ['{"a":[1]}', '{"a":{"0":1}}', false],
  ['{"\'; DROP TABLE threads; --":"x"}', '{"\'; DROP TABLE threads; --":"x"}', true],
  ['{"":0}', '{"":0}', true],
  ['{"a":0}', '{"":0}', false],
  // Unicode: compared as text, escapes decoded, no normalisation.
  ['{"ключ":"值 😀"}', '{"ключ":"值 😀"}', true],
  ['{"ключ":"值 😀"}', '{"ключ":"值"}', false],
  ['{"é":1}', '{"\\u00e9":1}', true],
  ['{"é":1}', '{"e\\u0301":1}', false],
  ['{"k":"😀"}', '{"k":"\\ud83d\\ude00"}', true],
  // Prototype names are ordinary keys, never inherited ones.
  ['{"__proto__":{"x":1}}', '{"__proto__":{"x":1}}', true],
  ["{}", '{"__proto__":{}}', false],
  ["{}", '{"constructor":{}}', false],
  ["{}", '{"toString":{}}', false],
  // Duplicate keys: the last one counts.
  ['{"a":1,"a":2}', '{"a":2}', true],
  ['{"a":1,"a":2}', '{"a":1}', false],
  // The top level (not storable as a record's field): Postgres's raw-scalar exception.
  ["[1,2]", "1", true],
  ["[1,2]", "[2]", true],
  ["[[1,2]]", "[1]", false],
  ["1", "[1]", false],
  ["1", "1", true],
  ['"x"', '"x"', true],
  ["null", "null", true],
  ["null", "{}", false],
  ['[{"a":1}]', '{"a":1}', false],
  ['{"a":1}', "[]", false],
  ["[]", "[]", true],
  ["[]", "{}", false],
  ["{}", "{}", true],
];

/**
 * `[document, access filter, whether it matches]` as JSON text: the access
 * filter language of src/core/filter.ts, case by case. Every backend must
 * give these answers through every scoped method.
 */
export const ACCESS_CASES: readonly (readonly [document: string, filter: string, matches: boolean])[] = [
  // No conditions: everything.
  ['{"a":1}', "{}", true],
  ["{}", "{}", true],
  // Equality (shorthand and $eq): the field is present and the same scalar.
  ['{"owner":"alice"}', '{"owner":"alice"}', true],
  ['{"owner":"alice"}', '{"owner":"bob"}', false],
  ["{}", '{"owner":"alice"}', false],
  ['{"owner":"alice"}', '{"owner":{"$eq":"alice"}}', true],
  ['{"owner":"alice"}', '{"owner":{"$eq":"Alice"}}', false],
  ['{"owner":["alice"]}', '{"owner":"alice"}', false],
  ['{"owner":{"id":"alice"}}', '{"owner":"alice"}', false],
  ['{"owner":{"$eq":"alice"}}', '{"owner":"alice"}', false],
  ['{"n":1}', '{"n":1.0}', true],
  ['{"n":100}', '{"n":1e2}', true],
  ['{"n":-0}', '{"n":0}', true],
  ['{"n":1}', '{"n":true}', false],
  ['{"n":true}', '{"n":{"$eq":1}}', false],
  ['{"n":"1"}', '{"n":1}', false],
  ['{"n":0}', '{"n":{"$eq":false}}', false],
  ['{"n":""}', '{"n":{"$eq":""}}', true],
  ['{"n":false}', '{"n":{"$eq":false}}', true],
  // Null versus missing: null matches a present null only.
  ['{"k":null}', '{"k":null}', true],
  ['{"k":null}', '{"k":{"$eq":null}}', true],
  ["{}", '{"k":{"$eq":null}}', false],
  ["{}", '{"k":null}', false],
  ['{"k":"x"}', '{"k":{"$eq":null}}', false],
  ['{"k":null}', '{"k":{"$in":[null,"x"]}}', true],
  ["{}", '{"k":{"$in":[null]}}', false],
  ['{"k":[null]}', '{"k":{"$contains":null}}', true],
  ['{"k":null}', '{"k":{"$contains":null}}', false],
  ['{"k":null}', '{"k":{"$contains":[]}}', false],
  // $in: the field is one of the scalars listed.
  ['{"role":"admin"}', '{"role":{"$in":["admin","owner"]}}', true],
  ['{"role":"guest"}', '{"role":{"$in":["admin","owner"]}}', false],
  ['{"role":"admin"}', '{"role":{"$in":[]}}', false],
  ['{"role":["admin"]}', '{"role":{"$in":["admin"]}}', false],
  ['{"n":2}', '{"n":{"$in":[1,2.0]}}', true],
  ['{"n":true}', '{"n":{"$in":[1,"true"]}}', false],
  ['{"n":1}', '{"n":{"$in":[true,"1"]}}', false],
  // $contains: the field is an array with every scalar listed.
  ['{"tags":["a","b"]}', '{"tags":{"$contains":"a"}}', true],
  ['{"tags":["a","b"]}', '{"tags":{"$contains":["b","a"]}}', true],
  ['{"tags":["a","b"]}', '{"tags":{"$contains":["a","c"]}}', false],
  ['{"tags":["a","a"]}', '{"tags":{"$contains":["a","a"]}}', true],
  ['{"tags":["a"]}', '{"tags":{"$contains":[]}}', true],
  ['{"tags":[]}', '{"tags":{"$contains":[]}}', true],
  ['{"tags":"a"}', '{"tags":{"$contains":[]}}', false],
  ["{}", '{"tags":{"$contains":[]}}', false],
  ['{"tags":"abc"}', '{"tags":{"$contains":"a"}}', false],
  ['{"tags":"a"}', '{"tags":{"$contains":"a"}}', false],
  ['{"tags":"a"}', '{"tags":{"$contains":["a"]}}', false],
  ['{"tags":[["a"]]}', '{"tags":{"$contains":"a"}}', false],
  ['{"tags":[{"a":1}]}', '{"tags":{"$contains":"a"}}', false],
  ['{"tags":{"a":1}}', '{"tags":{"$contains":"a"}}', false],
  ['{"tags":[1,true,null]}', '{"tags":{"$contains":[true,1,null]}}', true],
  ['{"tags":[1]}', '{"tags":{"$contains":true}}', false],
  ['{"tags":[1.0]}', '{"tags":{"$contains":1}}', true],
  ['{"tags":["1"]}', '{"tags":{"$contains":1}}', false],
  // Several conditions, on several keys or one: all must hold.
  ['{"owner":"alice","tags":["x"]}', '{"owner":"alice","tags":{"$contains":"x"}}', true],
  ['{"owner":"alice","tags":["y"]}', '{"owner":"alice","tags":{"$contains":"x"}}', false],
  ['{"owner":"bob","tags":["x"]}', '{"owner":"alice","tags":{"$contains":"x"}}', false],
  ['{"k":"a"}', '{"k":{"$eq":"a","$in":["a","b"]}}', true],
  ['{"k":"b"}', '{"k":{"$eq":"a","$in":["a","b"]}}', false],
  // Keys are top-level fields, taken literally: no paths, no SQL.
  ['{"a.b":1}', '{"a.b":1}', true],
  ['{"a":{"b":1}}', '{"a.b":1}', false],
  ['{"a":[1]}', '{"a[0]":1}', false],
  ['{"a":1}', '{"$.a":1}', false],
  ['{"$eq":1}', '{"$eq":1}', true],
  ['{"$eq":1}', '{"$eq":{"$eq":1}}', true],
  ["{}", '{"$eq":1}', false],
  ['{"__proto__":"x"}', '{"__proto__":"x"}', true],
  ["{}", '{"constructor":{"$in":[null]}}', false],
  ["{}", '{"toString":{"$contains":[]}}', false],
  ['{"a\\"b":1}', '{"a\\"b":1}', true],
  ['{"a\\\\":1}', '{"a\\\\":1}', true],
  ['{"\'; DROP TABLE threads; --":"x"}', '{"\'; DROP TABLE threads; --":"x"}', true],
  ['{"":0}', '{"":0}', true],
  ['{"é":1}', '{"e\\u0301":1}', false],
  ['{"é":"😀"}', '{"\\u00e9":{"$in":["\\ud83d\\ude00"]}}', true],
  // A string no record can hold (NUL, a lone surrogate) matches nothing.
  ['{"k":"a"}', '{"k":"a\\u0000"}', false],
  ['{"k":"a"}', '{"k":{"$in":["\\u0000","a"]}}', true],
  ['{"k":["a"]}', '{"k":{"$contains":["a","\\ud800"]}}', false],
  ['{"k":"a"}', '{"\\udc00":{"$in":["a"]}}', false],
];

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

/** The distinct object documents and object filters of the cases (what records can hold and searches take). */
function storableCases(): { documents: Json[]; filters: Json[] } {
  const documents = new Map<string, Json>();
  const filters = new Map<string, Json>();
  for (const [document, filter] of CONTAINMENT_CASES) {
    const d: unknown = JSON.parse(document);
    const f: unknown = JSON.parse(filter);
    if (isObject(d)) documents.set(canonical(d), d);
    if (isObject(f)) filters.set(canonical(f), f);
  }
  return { documents: [...documents.values()], filters: [...filters.values()] };
}

/** JSON text with every object's keys sorted (records on Postgres come back in JSONB's key order). */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}

/** Code-point order, the order of SQLite's BINARY and Postgres's "C" collations. */
export const byCodePoint = (a: string, b: string): number => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));

/** `{"k": {"k": … 1 …}}`, `depth` objects deep, built without recursion. */
export function nested(depth: number, leaf: unknown = 1): Json {
  let value: unknown = leaf;
  for (let i = 0; i < depth; i++) value = { k: value };
  return value as Json;
}

/** Ids sorted so a failure shows which differ. */
const sorted = (ids: string[]) => [...ids].sort(byCodePoint);

const ALL = { limit: 100_000, offset: 0 };

/** Keys and values a record must keep exactly (NUL and lone surrogates are the edge's to refuse: JSONB holds neither). */
const HOSTILE: Json = JSON.parse(
  JSON.stringify({
    '"': "'",
    "\\": "\\\\",
    "a\\u0041": "a\\u0041",
    "$.a[0]": "$..*",
    "a.b": "[0]",
    "": "",
    " ": " ",
    "'; DROP TABLE threads; --": "' OR '1'='1",
    "\u2028\u2029": "\u2028\u2029\t\n\r\b\f",
    "ключ 值 😀": "e\u0301 é \uFFFF \uD83D\uDE00",
    "%_": "%_",
    numbers: [0, -1, 0.1, 1e308, -1e-308, 5e-324, Number.MAX_SAFE_INTEGER, 2 ** 60],
    booleans: [true, false, null],
    long: "x".repeat(100_000),
  }).replace("{", '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},'),
) as Json;

export function describeRecords(init: RecordsSuiteInit): void {
  const setup = async () => {
    const clock = new ManualClock();
    const backend = await init.create(clock);
    return { clock, backend };
  };

  const newAssistant = (assistant_id: string, metadata: Json, name = assistant_id, graph_id = "graph") => ({
    assistant_id,
    graph_id,
    config: {},
    context: {},
    metadata,
    name,
    description: null,
    if_exists: "raise" as const,
  });

  describe(`Records conformance: ${init.name}`, () => {
    describe("filters mean JSON containment, every filter against every stored document", () => {
      const { documents, filters } = storableCases();
      const id = (i: number) => `r${String(i).padStart(3, "0")}`;
      const expected = (filter: Json) => documents.flatMap((document, i) => (contains(document, filter) ? [id(i)] : []));

      it("answers the documented cases as Postgres's @> does", () => {
        for (const [document, filter, answer] of CONTAINMENT_CASES) {
          expect(contains(JSON.parse(document), JSON.parse(filter)), `${document} @> ${filter}`).toBe(answer);
        }
      });

      it("thread metadata: searches and counts", async () => {
        const { backend } = await setup();
        for (const [i, metadata] of documents.entries()) await backend.threads.create({ thread_id: id(i), metadata, if_exists: "raise" });
        for (const filter of filters) {
          const found = await backend.threads.search({ ...ALL, metadata: filter });
          expect(sorted(found.map((t) => t.thread_id)), JSON.stringify(filter)).toEqual(expected(filter));
          expect(await backend.threads.count({ metadata: filter }), JSON.stringify(filter)).toBe(found.length);
        }
        await backend.close();
      });

      it("thread values: searches and counts", async () => {
        const { backend } = await setup();
        for (const [i, values] of documents.entries()) {
          await backend.threads.create({ thread_id: id(i), metadata: {}, if_exists: "raise" });
          await backend.threads.setState(id(i), { values, interrupts: {}, status: "idle" });
        }
        // A thread without values matches no (non-empty) values filter.
        await backend.threads.create({ thread_id: "no-values", metadata: {}, if_exists: "raise" });
        for (const filter of filters) {
          const found = await backend.threads.search({ ...ALL, values: filter });
          const want = Object.keys(filter).length === 0 ? [...expected(filter), "no-values"] : expected(filter);
          expect(sorted(found.map((t) => t.thread_id)), JSON.stringify(filter)).toEqual(sorted(want));
          expect(await backend.threads.count({ values: filter }), JSON.stringify(filter)).toBe(found.length);
        }
        await backend.close();
      });

      it("assistant metadata: searches, counts and versions", async () => {
        const { backend } = await setup();
        for (const [i, metadata] of documents.entries()) await backend.assistants.create(newAssistant(id(i), metadata));
        for (const filter of filters) {
          const found = await backend.assistants.search({ ...ALL, metadata: filter });
          expect(sorted(found.map((a) => a.assistant_id)), JSON.stringify(filter)).toEqual(expected(filter));
          expect(await backend.assistants.count({ metadata: filter }), JSON.stringify(filter)).toBe(found.length);
        }
        // Versions: each keeps the metadata it was written with (merged on patch).
        await backend.assistants.create(newAssistant("versioned", { a: 1 }));
        await backend.assistants.patch("versioned", { metadata: { b: { x: 1, y: [1, 2] } } });
        const versions = async (metadata: Json) =>
          (await backend.assistants.versions("versioned", { ...ALL, metadata })).map((a) => a.version);
        expect(await versions({ a: 1 })).toEqual([2, 1]);
        expect(await versions({ b: { y: [2] } })).toEqual([2]);
        expect(await versions({ a: true })).toEqual([]);
        expect(await versions({ b: null })).toEqual([]);
        await backend.close();
      });

      it("store values: searches", async () => {
        const { backend } = await setup();
        for (const [i, value] of documents.entries()) await backend.items.put(["docs"], id(i), value);
        await backend.items.put(["other"], "elsewhere", {});
        for (const filter of filters) {
          const found = await backend.items.search({ namespace_prefix: ["docs"], filter, ...ALL });
          expect(sorted(found.map((item) => item.key)), JSON.stringify(filter)).toEqual(expected(filter));
        }
        await backend.close();
      });

      it("checkpoint metadata: history filters", async () => {
        const { backend } = await setup();
        await backend.threads.create({ thread_id: "t", metadata: {}, if_exists: "raise" });
        const checkpointIds: string[] = [];
        // Not documents with a `__proto__` key: LangGraph's serializer
        // rebuilds objects by assignment when it loads them, which drops it.
        const kept = documents.filter((document) => !Object.hasOwn(document, "__proto__"));
        for (const [i, metadata] of kept.entries()) {
          const checkpointId = `00000000-0000-6000-8000-${String(i).padStart(12, "0")}`;
          checkpointIds.push(checkpointId);
          await backend.checkpointer.put(
            { configurable: { thread_id: "t", checkpoint_ns: "" } },
            { v: 4, id: checkpointId, ts: new Date(0).toISOString(), channel_values: {}, channel_versions: {}, versions_seen: {} },
            metadata as never,
            {},
          );
        }
        for (const filter of filters) {
          const found: string[] = [];
          for await (const tuple of backend.checkpointer.list({ configurable: { thread_id: "t" } }, { filter })) {
            found.push(tuple.checkpoint.id);
          }
          const want = kept.flatMap((document, i) => (contains(document, filter) ? [checkpointIds[i]!] : []));
          expect(sorted(found), JSON.stringify(filter)).toEqual(sorted(want));
        }
        await backend.close();
      });
    });

    describe("access filters: $eq, $in and $contains, every filter against every stored document through every scoped method", () => {
      const documents = new Map<string, Json>();
      const accessFilters = new Map<string, Filter>();
      for (const [document, filter] of ACCESS_CASES) {
        documents.set(canonical(JSON.parse(document)), JSON.parse(document) as Json);
        accessFilters.set(canonical(JSON.parse(filter)), JSON.parse(filter) as Filter);
      }
      const docs = [...documents.values()];
      const id = (i: number) => `a${String(i).padStart(3, "0")}`;
      const expected = (filter: Filter) => docs.flatMap((document, i) => (matches(document, filter) ? [id(i)] : []));

      it("answers the documented cases", () => {
        for (const [document, filter, answer] of ACCESS_CASES) {
          expect(matches(JSON.parse(document), JSON.parse(filter) as Filter), `${document} ~ ${filter}`).toBe(answer);
        }
      });

      it("threads: search, count, get, patch and delete see only what the filter allows", async () => {
        const { backend } = await setup();
        for (const [i, metadata] of docs.entries()) await backend.threads.create({ thread_id: id(i), metadata, if_exists: "raise" });
        for (const filter of accessFilters.values()) {
          const label = JSON.stringify(filter);
          const want = expected(filter);
          const found = await backend.threads.search({ ...ALL, access: filter });
          expect(sorted(found.map((t) => t.thread_id)), label).toEqual(want);
          expect(await backend.threads.count({ access: filter }), label).toBe(want.length);
          const got: string[] = [];
          for (const [i] of docs.entries()) if ((await backend.threads.get(id(i), { access: filter })) !== null) got.push(id(i));
          expect(got, label).toEqual(want);
        }
        // Writes: a record outside the filter is missing, and stays as it was.
        const [inside, outside] = [{ owner: "alice" }, { owner: "bob" }];
        await backend.threads.create({ thread_id: "alice", metadata: inside, if_exists: "raise" });
        await backend.threads.create({ thread_id: "bob", metadata: outside, if_exists: "raise" });
        const scope = { access: { owner: "alice" } };
        await expect(backend.threads.patch("bob", { x: 1 }, scope)).rejects.toMatchObject({ code: "not_found" });
        expect((await backend.threads.get("bob"))!.metadata).toEqual(outside);
        expect((await backend.threads.patch("alice", { x: 1 }, scope)).metadata).toEqual({ owner: "alice", x: 1 });
        expect(await backend.threads.delete("bob", scope)).toBe(false);
        expect(await backend.threads.get("bob")).not.toBeNull();
        expect(await backend.threads.delete("alice", scope)).toBe(true);
        expect(await backend.threads.get("alice")).toBeNull();
        await backend.close();
      });

      it("assistants: search, count, get, versions, patch, setLatest and delete see only what the filter allows", async () => {
        const { backend } = await setup();
        for (const [i, metadata] of docs.entries()) await backend.assistants.create(newAssistant(id(i), metadata));
        for (const filter of accessFilters.values()) {
          const label = JSON.stringify(filter);
          const want = expected(filter);
          expect(sorted((await backend.assistants.search({ ...ALL, access: filter })).map((a) => a.assistant_id)), label).toEqual(want);
          expect(await backend.assistants.count({ access: filter }), label).toBe(want.length);
          const got: string[] = [];
          for (const [i] of docs.entries()) if ((await backend.assistants.get(id(i), { access: filter })) !== null) got.push(id(i));
          expect(got, label).toEqual(want);
        }
        await backend.assistants.create(newAssistant("alice", { owner: "alice" }));
        await backend.assistants.create(newAssistant("bob", { owner: "bob" }));
        const scope = { access: { owner: { $in: ["alice"] } } };
        await expect(backend.assistants.patch("bob", { name: "taken" }, scope)).rejects.toMatchObject({ code: "not_found" });
        await expect(backend.assistants.setLatest("bob", 1, scope)).rejects.toMatchObject({ code: "not_found" });
        expect((await backend.assistants.get("bob"))!.name).toBe("bob");
        // Versions are each matched by their own metadata.
        await backend.assistants.patch("alice", { metadata: { owner: "carol" } }, scope);
        expect((await backend.assistants.versions("alice", { ...ALL, access: scope.access })).map((a) => a.version)).toEqual([1]);
        expect((await backend.assistants.versions("alice", { ...ALL, access: { owner: "carol" } })).map((a) => a.version)).toEqual([2]);
        expect(await backend.assistants.get("alice", scope)).toBeNull();
        expect(await backend.assistants.delete("alice", scope)).toBe(false);
        expect(await backend.assistants.delete("bob", { access: { owner: "bob" } })).toBe(true);
        expect(await backend.assistants.get("bob")).toBeNull();
        expect((await backend.assistants.get("alice", { access: { owner: "carol" } }))!.version).toBe(2);
        await backend.close();
      });

      it("store items: search, get and delete match the value with the item's own namespace and key", async () => {
        const { backend } = await setup();
        for (const [i, value] of docs.entries()) await backend.items.put(["docs"], id(i), value);
        for (const filter of accessFilters.values()) {
          const label = JSON.stringify(filter);
          const want = expected(filter);
          const found = await backend.items.search({ namespace_prefix: ["docs"], access: filter, ...ALL });
          expect(sorted(found.map((item) => item.key)), label).toEqual(want);
          const got: string[] = [];
          for (const [i] of docs.entries()) if ((await backend.items.get(["docs"], id(i), { access: filter })) !== null) got.push(id(i));
          expect(got, label).toEqual(want);
        }
        // `namespace` and `key` are the item's own, whatever its value holds under those names.
        await backend.items.put(["users", "alice"], "note", { namespace: ["users", "bob"], key: "other", owner: "alice" });
        await backend.items.put(["users", "bob"], "note", { owner: "bob" });
        await backend.items.put([""], "", { owner: "nobody" });
        const keys = async (access: Filter) =>
          (await backend.items.search({ namespace_prefix: [], access, ...ALL })).map((item) => `${item.namespace.join("/")}:${item.key}`).sort(byCodePoint);
        expect(await keys({ namespace: { $contains: "alice" } })).toEqual(["users/alice:note"]);
        expect(await keys({ namespace: { $contains: ["bob", "users"] } })).toEqual(["users/bob:note"]);
        expect(await keys({ namespace: { $contains: "" } })).toEqual([":"]);
        expect(await keys({ key: "other" })).toEqual([]);
        expect(await keys({ key: "note", owner: "alice" })).toEqual(["users/alice:note"]);
        expect(await keys({ key: "" })).toEqual([":"]);
        // Labels are data (regex, LIKE and path characters too); a namespace is an array, never equal to a string.
        await backend.items.put(["a.b", "*", "%_\\", "(.)"], "odd", {});
        expect(await keys({ namespace: { $contains: ["*", "(.)", "%_\\"] } })).toEqual(["a.b/*/%_\\/(.):odd"]);
        expect(await keys({ namespace: { $contains: "." } })).toEqual([]);
        expect(await keys({ namespace: "users" })).toEqual([]);
        expect(await keys({ namespace: { $in: ["users"] } })).toEqual([]);
        expect(await backend.items.get(["users", "bob"], "note", { access: { namespace: { $contains: "alice" } } })).toBeNull();
        await backend.items.delete(["users", "bob"], "note", { access: { owner: "alice" } });
        expect(await backend.items.get(["users", "bob"], "note")).not.toBeNull();
        await backend.items.delete(["users", "bob"], "note", { access: { owner: "bob", key: "note" } });
        expect(await backend.items.get(["users", "bob"], "note")).toBeNull();
        await backend.close();
      });

      it("combine with the client's filter (both must hold), whose keys stay literal: a client's \"$eq\" is a key, never an operator", async () => {
        const { backend } = await setup();
        const records: [string, Json][] = [
          ["plain", { owner: "alice", topic: "x" }],
          ["other-topic", { owner: "alice", topic: "y" }],
          ["other-owner", { owner: "bob", topic: "x" }],
          ["literal-eq", { owner: { $eq: "alice" }, topic: "x" }],
          ["dollar-key", { $eq: "alice", owner: "alice" }],
        ];
        for (const [threadId, metadata] of records) {
          await backend.threads.create({ thread_id: threadId, metadata, if_exists: "raise" });
          await backend.assistants.create(newAssistant(threadId, metadata));
          await backend.items.put(["ns"], threadId, metadata);
        }
        const ask = async (client: Json, access?: Filter) => {
          const threads = sorted((await backend.threads.search({ ...ALL, metadata: client, access })).map((t) => t.thread_id));
          expect(await backend.threads.count({ metadata: client, access })).toBe(threads.length);
          expect(sorted((await backend.assistants.search({ ...ALL, metadata: client, access })).map((a) => a.assistant_id))).toEqual(threads);
          expect(sorted((await backend.items.search({ namespace_prefix: ["ns"], filter: client, access, ...ALL })).map((i) => i.key))).toEqual(threads);
          return threads;
        };
        expect(await ask({ topic: "x" }, { owner: "alice" })).toEqual(["plain"]);
        expect(await ask({ topic: "x" }, { owner: { $in: ["alice", "bob"] } })).toEqual(sorted(["plain", "other-owner"]));
        expect(await ask({ owner: "alice" }, { topic: "y" })).toEqual(["other-topic"]);
        // The client's operator-looking values are data.
        expect(await ask({ owner: { $eq: "alice" } })).toEqual(["literal-eq"]);
        expect(await ask({ owner: { $in: ["alice"] } })).toEqual([]);
        expect(await ask({ $eq: "alice" })).toEqual(["dollar-key"]);
        // An access filter cannot be widened by the client's: the client asks within it.
        expect(await ask({ owner: { $eq: "alice" } }, { owner: "alice" })).toEqual([]);
        await backend.close();
      });

      it("a filter outside the language is refused (the handler that wrote it is wrong), never read as something else", async () => {
        const { backend } = await setup();
        await backend.threads.create({ thread_id: "t", metadata: { k: 1 }, if_exists: "raise" });
        for (const filter of [{ k: { $gt: 0 } }, { k: [1] }, { k: {} }, { k: { a: 1 } }, { k: { $in: 1 } }, { k: { $eq: { a: 1 } } }, { k: { $contains: [[1]] } }, { k: Number.NaN }]) {
          expect(() => accessConditions(filter as unknown as Filter), JSON.stringify(filter)).toThrow(BatonError);
          await expect(backend.threads.search({ ...ALL, access: filter as unknown as Filter }), JSON.stringify(filter)).rejects.toMatchObject({ code: "internal" });
          await expect(backend.threads.get("t", { access: filter as unknown as Filter })).rejects.toThrow(BatonError);
        }
        await backend.close();
      });
    });

    it("an empty filter asks for nothing: records whose field is empty or null still match", async () => {
      const { backend } = await setup();
      await backend.threads.create({ thread_id: "empty", metadata: {}, if_exists: "raise" });
      await backend.threads.create({ thread_id: "full", metadata: { a: 1 }, if_exists: "raise" });
      await backend.threads.setState("full", { values: { a: 1 }, interrupts: {}, status: "idle" });
      const ids = async (query: { metadata?: Json; values?: Json }) =>
        sorted((await backend.threads.search({ ...ALL, ...query })).map((t) => t.thread_id));
      expect(await ids({ metadata: {} })).toEqual(["empty", "full"]);
      expect(await ids({ values: {} })).toEqual(["empty", "full"]);
      expect(await ids({ values: { a: 1 } })).toEqual(["full"]);
      expect(await backend.threads.count({ metadata: {}, values: {} })).toBe(2);
      await backend.close();
    });

    it("a filter naming what no record can hold (U+0000, a lone surrogate) matches nothing, without failing", async () => {
      const { backend } = await setup();
      await backend.threads.create({ thread_id: "t", metadata: { k: "a" }, if_exists: "raise" });
      await backend.items.put(["ns"], "k", { k: "a" });
      for (const filter of [{ k: "a\u0000" }, { k: "\uD800" }, { "\uDC00": "a" }, { k: ["\u0000"] }]) {
        expect(await backend.threads.search({ ...ALL, metadata: filter })).toEqual([]);
        expect(await backend.threads.count({ metadata: filter })).toBe(0);
        expect(await backend.items.search({ namespace_prefix: ["ns"], filter, ...ALL })).toEqual([]);
      }
      await backend.close();
    });

    it("filters of 50,000 keys and lists of 40,000 ids are single parameters, never one per key or id", async () => {
      const { backend } = await setup();
      const wide: Json = {};
      for (let i = 0; i < 50_000; i++) wide[`key ${i}`] = i;
      await backend.threads.create({ thread_id: "wide", metadata: wide, if_exists: "raise" });
      await backend.threads.create({ thread_id: "narrow", metadata: { "key 0": 0 }, if_exists: "raise" });
      await backend.assistants.create(newAssistant("wide", wide));
      await backend.items.put(["ns"], "wide", wide);
      expect((await backend.threads.search({ ...ALL, metadata: wide })).map((t) => t.thread_id)).toEqual(["wide"]);
      expect(await backend.threads.count({ metadata: wide })).toBe(1);
      expect(await backend.threads.count({ metadata: { ...wide, extra: 1 } })).toBe(0);
      expect((await backend.assistants.search({ ...ALL, metadata: wide })).map((a) => a.assistant_id)).toEqual(["wide"]);
      expect((await backend.items.search({ namespace_prefix: ["ns"], filter: wide, ...ALL })).map((i) => i.key)).toEqual(["wide"]);

      const real = Array.from({ length: 10 }, (_, i) => `real-${i}`);
      for (const threadId of real) await backend.threads.create({ thread_id: threadId, metadata: {}, if_exists: "raise" });
      const ids = [...Array.from({ length: 40_000 }, () => randomUUID()), ...real, "real-0"];
      const found = await backend.threads.search({ ...ALL, ids, sort_by: "thread_id", sort_order: "asc" });
      expect(found.map((t) => t.thread_id)).toEqual(real);
      // Pruning 40,000 ids (duplicates counted once) removes exactly the ones that exist.
      expect(await backend.threads.prune(ids, "delete")).toEqual({ pruned: real.length, pending_runs: [] });
      expect(sorted((await backend.threads.search(ALL)).map((t) => t.thread_id))).toEqual(["narrow", "wide"]);
      await backend.close();
    });

    // 3,000 levels: three times what SQLite's JSON functions accept, within
    // what V8's JSON.stringify can write (about 4,000 levels).
    it("records 3,000 levels deep are stored faithfully and break no one's later searches, counts or deletes", async () => {
      const { backend } = await setup();
      const deep = nested(3_000);
      // Every object of the chain has one key: JSON text compares it whatever a backend's key order.
      const deepText = JSON.stringify(deep);
      // The poison records, one in every filterable field.
      await backend.threads.create({ thread_id: "deep", metadata: { owner: "mallory", deep }, if_exists: "raise" });
      await backend.threads.setState("deep", { values: { deep }, interrupts: {}, status: "idle" });
      await backend.assistants.create(newAssistant("deep", { owner: "mallory", deep }));
      await backend.items.put(["ns"], "deep", { owner: "mallory", deep });
      // Everyone else's records.
      await backend.assistants.create(newAssistant("alice-assistant", { owner: "alice" }));
      await backend.threads.create({ thread_id: "alice", metadata: { owner: "alice", assistant_id: "alice-assistant" }, if_exists: "raise" });
      await backend.threads.setState("alice", { values: { messages: ["hi"] }, interrupts: {}, status: "idle" });
      await backend.items.put(["ns"], "alice", { owner: "alice" });

      expect((await backend.threads.search({ ...ALL, metadata: { owner: "alice" } })).map((t) => t.thread_id)).toEqual(["alice"]);
      expect(await backend.threads.count({ metadata: { owner: "alice" } })).toBe(1);
      expect((await backend.threads.search({ ...ALL, values: { messages: ["hi"] } })).map((t) => t.thread_id)).toEqual(["alice"]);
      expect(await backend.threads.count({ values: { messages: [] } })).toBe(1);
      expect((await backend.assistants.search({ ...ALL, metadata: { owner: "alice" } })).map((a) => a.assistant_id)).toEqual(["alice-assistant"]);
      expect(await backend.assistants.count({ metadata: { owner: "alice" } })).toBe(1);
      expect((await backend.items.search({ namespace_prefix: ["ns"], filter: { owner: "alice" }, ...ALL })).map((i) => i.key)).toEqual(["alice"]);
      // A filter reaching into the deep record finds it (and only it).
      expect((await backend.threads.search({ ...ALL, metadata: { deep: nested(2_000, nested(1_000)) } })).map((t) => t.thread_id)).toEqual(["deep"]);
      expect(await backend.threads.count({ metadata: { deep: nested(3_000, 2) } })).toBe(0);
      // Deleting an assistant with its threads looks at every thread's metadata.
      expect(await backend.assistants.delete("alice-assistant", { deleteThreads: true })).toBe(true);
      expect(await backend.threads.get("alice")).toBeNull();
      expect(await backend.assistants.delete("deep", { deleteThreads: true })).toBe(true);
      // Read back unchanged.
      const thread = (await backend.threads.get("deep"))!;
      expect(JSON.stringify(thread.metadata.deep)).toBe(deepText);
      expect(JSON.stringify(thread.values?.deep)).toBe(deepText);
      expect(JSON.stringify((await backend.items.get(["ns"], "deep"))!.value.deep)).toBe(deepText);
      expect(JSON.stringify((await backend.threads.search({ ...ALL, metadata: { owner: "mallory" } }))[0]!.metadata.deep)).toBe(deepText);
      await backend.close();
    });

    it("deleting an assistant's threads takes only threads whose metadata names it as a string", async () => {
      const { backend } = await setup();
      const assistantId = `a"\\.$[0]`;
      await backend.assistants.create(newAssistant(assistantId, {}));
      const threads: [string, Json][] = [
        ["named", { assistant_id: assistantId }],
        ["named-too", { assistant_id: assistantId, other: 1 }],
        ["in-a-list", { assistant_id: [assistantId] }],
        ["as-a-key", { assistant_id: { [assistantId]: 1 } }],
        ["nested", { meta: { assistant_id: assistantId } }],
        ["another", { assistant_id: "a" }],
        ["none", {}],
      ];
      for (const [threadId, metadata] of threads) await backend.threads.create({ thread_id: threadId, metadata, if_exists: "raise" });
      expect(await backend.assistants.delete(assistantId, { deleteThreads: true })).toBe(true);
      expect(sorted((await backend.threads.search(ALL)).map((t) => t.thread_id))).toEqual(sorted(["in-a-list", "as-a-key", "nested", "another", "none"]));
      await backend.close();
    });

    it("hostile keys and values are stored and read back exactly, and filter like any other", async () => {
      const { backend } = await setup();
      const text = canonical(HOSTILE);
      await backend.threads.create({ thread_id: "hostile", metadata: HOSTILE, if_exists: "raise" });
      await backend.threads.setState("hostile", { values: HOSTILE, interrupts: {}, status: "idle" });
      await backend.assistants.create(newAssistant("hostile", HOSTILE, `'"\\%_ 😀`));
      await backend.items.put(["ns", "'\"\\%_."], "'\"\\%_.", HOSTILE);
      const thread = (await backend.threads.get("hostile"))!;
      expect(canonical(thread.metadata)).toBe(text);
      expect(canonical(thread.values)).toBe(text);
      const assistant = (await backend.assistants.get("hostile"))!;
      expect(canonical(assistant.metadata)).toBe(text);
      expect(assistant.name).toBe(`'"\\%_ 😀`);
      const item = (await backend.items.get(["ns", "'\"\\%_."], "'\"\\%_."))!;
      expect(canonical(item.value)).toBe(text);
      expect(item.namespace).toEqual(["ns", "'\"\\%_."]);
      expect(Object.prototype).not.toHaveProperty("polluted");
      // Each hostile entry, as a filter, finds the record.
      for (const [key, value] of Object.entries(HOSTILE)) {
        const filter = JSON.parse(`{${JSON.stringify(key)}:${JSON.stringify(value)}}`) as Json;
        expect(await backend.threads.count({ metadata: filter }), key).toBe(1);
        expect(await backend.threads.count({ values: filter }), key).toBe(1);
        expect(await backend.assistants.count({ metadata: filter }), key).toBe(1);
        expect((await backend.items.search({ namespace_prefix: ["ns"], filter, ...ALL })).length, key).toBe(1);
      }
      // Names with LIKE and quote characters match literally.
      expect((await backend.assistants.search({ ...ALL, name: `%_` })).map((a) => a.assistant_id)).toEqual(["hostile"]);
      expect(await backend.assistants.count({ name: `'"\\` })).toBe(1);
      expect(await backend.assistants.count({ name: "_%" })).toBe(0);
      await backend.close();
    });

    it("name and text queries match literally, folding the case of ASCII letters only", async () => {
      const { backend } = await setup();
      await backend.assistants.create(newAssistant("a1", {}, "Élan Vital 50%"));
      await backend.items.put(["ns"], "k", { text: "Élan Vital 50%" });
      for (const [query, found] of [["vital", true], ["VITAL", true], ["ÉLAN", true], ["élan", false], ["0%", true], ["5_%", false], ["%", true]] as const) {
        expect(await backend.assistants.count({ name: query }), query).toBe(found ? 1 : 0);
        expect((await backend.items.search({ namespace_prefix: ["ns"], query, ...ALL })).length, query).toBe(found ? 1 : 0);
      }
      await backend.close();
    });

    it("thread TTLs: a thread expires its TTL after its last write; the sweep takes what expired by its time, never a thread with a pending or running run, and disarms keep_latest ones", async () => {
      const { clock, backend } = await setup();
      const created = clock.nowMs();
      await backend.threads.create({ thread_id: "gone", metadata: {}, if_exists: "raise", ttl: { strategy: "delete", minutes: 1 } });
      await backend.threads.create({ thread_id: "kept", metadata: {}, if_exists: "raise", ttl: { strategy: "keep_latest", minutes: 1 } });
      await backend.threads.create({ thread_id: "busy", metadata: {}, if_exists: "raise", ttl: { strategy: "delete", minutes: 1 } });
      await backend.threads.create({ thread_id: "none", metadata: {}, if_exists: "raise" });
      expect((await backend.threads.get("gone"))?.ttl).toEqual({ strategy: "delete", ttl_minutes: 1, expires_at: isoFromMs(created + 60_000) });
      expect((await backend.threads.get("none"))?.ttl).toBeNull();
      await backend.runs.create(newRun("busy", "run-busy"));
      clock.advance(30_000);
      // A write is activity: the expiry moves to 60 s after it.
      await backend.threads.patch("kept", {});
      expect(await backend.threads.sweepExpired(created + 60_000 - 1, 100)).toEqual({ deleted: [], pruned: [] });
      expect(await backend.threads.sweepExpired(created + 60_000, 100)).toEqual({ deleted: ["gone"], pruned: [] });
      expect(await backend.threads.get("gone")).toBeNull();
      expect(await backend.threads.sweepExpired(created + 90_000, 100)).toEqual({ deleted: [], pruned: ["kept"] });
      expect((await backend.threads.get("kept"))?.ttl).toEqual({ strategy: "keep_latest", ttl_minutes: 1 });
      expect(await backend.threads.sweepExpired(created + 600_000, 100)).toEqual({ deleted: [], pruned: [] });
      // The busy thread's run ends (a write at +30 s): it expires a minute later.
      const run = (await backend.runs.claim("w", 60_000))!;
      expect(await backend.runs.finish(run.run_id, { owner: "w", attempt: run.attempt }, succeeded)).toBe("recorded");
      expect(await backend.threads.sweepExpired(created + 90_000 - 1, 100)).toEqual({ deleted: [], pruned: [] });
      expect(await backend.threads.sweepExpired(created + 90_000, 100)).toEqual({ deleted: ["busy"], pruned: [] });
      expect(await backend.runs.get("run-busy")).toBeNull();
      // A run's thread TTL goes only to the thread the run creates; an existing thread keeps what it has; a TTL by patch replaces it.
      await backend.runs.create({ ...newRun("made", "run-made"), thread_ttl: { strategy: "keep_latest", minutes: 5 } });
      expect((await backend.threads.get("made"))?.ttl).toMatchObject({ strategy: "keep_latest", ttl_minutes: 5 });
      await backend.runs.create({ ...newRun("none", "run-none"), thread_ttl: { strategy: "keep_latest", minutes: 5 } });
      expect((await backend.threads.get("none"))?.ttl).toBeNull();
      expect((await backend.threads.patch("none", {}, undefined, { strategy: "delete", minutes: 2 })).ttl).toMatchObject({ strategy: "delete", ttl_minutes: 2 });
      await backend.close();
    });

    it("thread TTLs: a sweep without a time judges expiry by the database's time where processes share it, else by the clock", async () => {
      const { clock, backend } = await setup();
      clock.advance(Date.now() - clock.nowMs());
      await backend.threads.create({ thread_id: "skewed", metadata: {}, if_exists: "raise", ttl: { strategy: "delete", minutes: 10 } });
      // This process's clock jumps an hour ahead: on a shared database its sweep must not delete early.
      clock.advance(3_600_000);
      const shared = init.name.startsWith("postgres");
      expect((await backend.threads.sweepExpired(undefined, 100)).deleted).toEqual(shared ? [] : ["skewed"]);
      expect((await backend.threads.sweepExpired(clock.nowMs(), 100)).deleted).toEqual(shared ? ["skewed"] : []);
      await backend.close();
    });

    it("thread TTLs: activity writes no expiry; a sweep moves the stored bound of a thread used since, and such threads do not count against its limit", async () => {
      const { clock, backend } = await setup();
      const created = clock.nowMs();
      const used = ["u1", "u2", "u3", "u4", "u5"];
      for (const threadId of [...used, "x1", "x2", "x3"]) await backend.threads.create({ thread_id: threadId, metadata: {}, if_exists: "raise", ttl: { strategy: "delete", minutes: 1 } });
      clock.advance(30_000);
      // A run on each used thread: created and ended is activity (updated_at), not a TTL write.
      for (const threadId of used) {
        await backend.runs.create(newRun(threadId, `run-${threadId}`));
        const run = (await backend.runs.claim("w", 60_000))!;
        expect(await backend.runs.finish(run.run_id, { owner: "w", attempt: run.attempt }, succeeded)).toBe("recorded");
      }
      expect((await backend.threads.get("u1"))?.ttl?.expires_at).toBe(isoFromMs(created + 90_000));
      // Their stored bounds (created + 60 s) come first, yet the sweep still takes three expired threads.
      expect(sorted((await backend.threads.sweepExpired(created + 60_000, 3)).deleted)).toEqual(["x1", "x2", "x3"]);
      expect(await backend.threads.sweepExpired(created + 60_000, 100)).toEqual({ deleted: [], pruned: [] });
      expect(sorted((await backend.threads.sweepExpired(created + 90_000, 100)).deleted)).toEqual(used);
      await backend.close();
    });

    it("prune answers the pending runs it deleted with their threads, and skips a thread with a running run", async () => {
      const { backend } = await setup();
      await backend.runs.create(newRun("queued", "run-queued"));
      await backend.runs.create(newRun("queued", "run-queued-2"));
      await backend.runs.create(newRun("busy", "run-busy"));
      expect((await backend.runs.claim("w", 60_000))?.run_id).toBe("run-queued");
      await backend.runs.create(newRun("quiet", "run-quiet"));
      expect(await backend.threads.prune(["quiet"], "keep_latest")).toEqual({ pruned: 1, pending_runs: [] });
      const pruned = await backend.threads.prune(["queued", "busy", "quiet", "missing"], "delete");
      // "queued" has a running run: skipped with its pending one.
      expect({ ...pruned, pending_runs: sorted(pruned.pending_runs) }).toEqual({ pruned: 2, pending_runs: ["run-busy", "run-quiet"] });
      expect(await backend.runs.get("run-queued-2")).not.toBeNull();
      await backend.close();
    });

    it("thread TTLs: concurrent sweeps take each expired thread once, up to their limits", async () => {
      const { clock, backend } = await setup();
      const ids = Array.from({ length: 60 }, (_, i) => `t${String(i).padStart(2, "0")}`);
      for (const threadId of ids) await backend.threads.create({ thread_id: threadId, metadata: {}, if_exists: "raise", ttl: { strategy: "delete", minutes: 1 } });
      const at = clock.nowMs() + 60_000;
      const sweeps = await Promise.all([backend.threads.sweepExpired(at, 25), backend.threads.sweepExpired(at, 25), backend.threads.sweepExpired(at, 25)]);
      const deleted = sweeps.flatMap((sweep) => sweep.deleted);
      expect(sweeps.every((sweep) => sweep.deleted.length <= 25)).toBe(true);
      expect(new Set(deleted).size).toBe(deleted.length);
      const left = (await backend.threads.sweepExpired(at, 100)).deleted;
      expect(sorted([...deleted, ...left])).toEqual(ids);
      expect(await backend.threads.count({})).toBe(0);
      await backend.close();
    });

    describe("sorting and pagination follow code-point order, identically on every backend", () => {
      // Mixed case, punctuation and characters outside the BMP: orders a
      // locale collation (or UTF-16 comparison) would change.
      const names = ["b", "B", "a-b", "ab", "_z", "é", "e\u0301", "\uFFFD", "😀", "Z", "a", "a b", "1", "10", "9"];

      it("threads: by every sort column, both ways, with ties broken by id", async () => {
        const { backend, clock } = await setup();
        const statuses: ThreadStatus[] = ["idle", "interrupted", "error"];
        const created = new Map<string, number>();
        const updated = new Map<string, number>();
        for (const [i, name] of names.entries()) {
          // Pairs of threads share a creation time, so ties happen.
          if (i % 2 === 0) clock.advance(1_000);
          created.set(name, clock.nowMs());
          await backend.threads.create({ thread_id: name, metadata: { i }, if_exists: "raise" });
        }
        for (const [i, name] of [...names].reverse().entries()) {
          if (i % 3 === 0) clock.advance(1_000);
          updated.set(name, clock.nowMs());
          await backend.threads.setState(name, { values: {}, interrupts: {}, status: statuses[i % 3]! });
        }
        const status = new Map(names.map((name) => [name, statuses[[...names].reverse().indexOf(name) % 3]!]));
        const keyOf: Record<string, (name: string) => string | number> = {
          thread_id: (name) => name,
          status: (name) => status.get(name)!,
          created_at: (name) => created.get(name)!,
          updated_at: (name) => updated.get(name)!,
        };
        for (const sortBy of ["thread_id", "status", "created_at", "updated_at"] as const) {
          for (const order of ["asc", "desc"] as const) {
            const key = keyOf[sortBy]!;
            const want = [...names].sort((a, b) => {
              const [ka, kb] = [key(a), key(b)];
              const primary = typeof ka === "number" ? ka - (kb as number) : byCodePoint(ka, kb as string);
              return (order === "asc" ? primary : -primary) || byCodePoint(a, b);
            });
            const query = { sort_by: sortBy, sort_order: order };
            const all = (await backend.threads.search({ ...ALL, ...query })).map((t) => t.thread_id);
            expect(all, `${sortBy} ${order}`).toEqual(want);
            // Pages of 4 put together give the same order; past the end is empty.
            const pages: string[] = [];
            for (let offset = 0; offset < names.length; offset += 4) {
              pages.push(...(await backend.threads.search({ limit: 4, offset, ...query })).map((t) => t.thread_id));
            }
            expect(pages, `${sortBy} ${order} paged`).toEqual(want);
            expect(await backend.threads.search({ limit: 4, offset: names.length, ...query })).toEqual([]);
          }
        }
        // The default order: newest first.
        expect((await backend.threads.search({ limit: 1, offset: 0 }))[0]!.thread_id).toBe([...names].filter((n) => created.get(n) === Math.max(...created.values())).sort(byCodePoint)[0]);
        await backend.close();
      });

      it("assistants: by every sort column, both ways, with ties broken by id", async () => {
        const { backend, clock } = await setup();
        const created = new Map<string, number>();
        for (const [i, name] of names.entries()) {
          if (i % 2 === 0) clock.advance(1_000);
          created.set(name, clock.nowMs());
          // Ids in reverse of names, graph ids shared by pairs: ties to break.
          await backend.assistants.create(newAssistant(`id ${names[names.length - 1 - i]}`, { i }, name, `graph ${names[i - (i % 2)]}`));
        }
        const assistants = await backend.assistants.search(ALL);
        expect(assistants).toHaveLength(names.length);
        for (const sortBy of ["assistant_id", "graph_id", "name", "created_at", "updated_at"] as const) {
          for (const order of ["asc", "desc"] as const) {
            const want = [...assistants]
              .sort((a, b) => {
                const primary = byCodePoint(a[sortBy], b[sortBy]);
                return (order === "asc" ? primary : -primary) || byCodePoint(a.assistant_id, b.assistant_id);
              })
              .map((a) => a.assistant_id);
            const query = { sort_by: sortBy, sort_order: order };
            expect((await backend.assistants.search({ ...ALL, ...query })).map((a) => a.assistant_id), `${sortBy} ${order}`).toEqual(want);
            const pages: string[] = [];
            for (let offset = 0; offset < names.length; offset += 4) {
              pages.push(...(await backend.assistants.search({ limit: 4, offset, ...query })).map((a) => a.assistant_id));
            }
            expect(pages, `${sortBy} ${order} paged`).toEqual(want);
          }
        }
        expect(created.size).toBe(names.length);
        await backend.close();
      });

      it("store items and namespaces: newest first, then namespace and key in code-point order", async () => {
        const { backend, clock } = await setup();
        for (const [i, name] of names.entries()) {
          if (i % 2 === 0) clock.advance(1_000);
          await backend.items.put(["ns", name], name, { i });
          await backend.items.put(["ns", "same"], name, { i });
        }
        const items = await backend.items.search({ namespace_prefix: ["ns"], ...ALL });
        const key = (item: { namespace: string[]; key: string }) => `${item.namespace.join("\u001f")}\u001f${item.key}`;
        const want = [...items].sort((a, b) => byCodePoint(b.updated_at, a.updated_at) || byCodePoint(a.namespace.join("\u001f") + "\u001f", b.namespace.join("\u001f") + "\u001f") || byCodePoint(a.key, b.key));
        expect(items.map(key)).toEqual(want.map(key));
        const pages: string[] = [];
        for (let offset = 0; offset < items.length; offset += 7) {
          pages.push(...(await backend.items.search({ namespace_prefix: ["ns"], limit: 7, offset })).map(key));
        }
        expect(pages).toEqual(want.map(key));
        const namespaces = await backend.items.listNamespaces({ prefix: ["ns"], limit: 100, offset: 0 });
        expect(namespaces.map((ns) => ns[1]!)).toEqual([...names, "same"].sort(byCodePoint));
        const paged = [
          ...(await backend.items.listNamespaces({ prefix: ["ns"], limit: 5, offset: 0 })),
          ...(await backend.items.listNamespaces({ prefix: ["ns"], limit: 5, offset: 5 })),
          ...(await backend.items.listNamespaces({ prefix: ["ns"], limit: 100, offset: 10 })),
        ];
        expect(paged).toEqual(namespaces);
        await backend.close();
      });
    });
  });
}
