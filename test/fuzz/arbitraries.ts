/**
 * fast-check arbitraries for requests built from the OpenAPI schemas, and
 * the type-breaking mutations applied to them.
 *
 * Ids that exist on the server are not known while requests are generated
 * (each operation gets fresh records), so generated values hold tokens such
 * as "@thread" that the runner replaces with real ids just before sending.
 */
import fc from "fast-check";
import type { Operation, Schema, Spec } from "./spec.ts";

/** Tokens replaced by real ids at send time (see runner.ts). */
export const TOKENS = ["@thread", "@interrupted", "@icheckpoint", "@assistant", "@run", "@checkpoint", "@graph", "@cron"] as const;

/** Raw JSON spliced into a body where a string `RAW(n)` sentinel stands (what JSON.stringify cannot write). */
export const RAW_TEXTS = [
  "1e400",
  "-1e400",
  '{"a":1,"a":2}',
  '{"__proto__":{"polluted":true}}',
  "[".repeat(5000) + "]".repeat(5000),
  '"\\ud800"',
  '"\\udc00\\ud800"',
  "123456789012345678901234567890",
];
export const rawSentinel = (index: number) => `\u0001RAW(${index})\u0001`;

const garbageIds = [
  "",
  " ",
  "not-a-uuid",
  "../../etc/passwd",
  "..",
  "%00",
  "\u0000",
  "'; DROP TABLE threads; --",
  "00000000-0000-0000-0000-000000000000",
  "ffffffff-ffff-ffff-ffff-ffffffffffff",
  "6BA7B810-9DAD-11D1-80B4-00C04FD430C8",
  "{thread_id}",
  "x".repeat(5000),
  "\ud800",
  "😀",
  "__proto__",
  "constructor",
  "*",
  "$.a[0]",
];

export const hostileStrings = [
  "",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "x\udc00",
  `'"\\`,
  "$.a[0]",
  "a\\u0041",
  "..",
  "*",
  "%s%n",
  "__proto__",
  "constructor",
  "prototype",
  "😀👩‍👩‍👧",
  "\u202eRTL\u202c",
  "x".repeat(70_000),
];

function nested(depth: number, leaf: unknown = 1): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

/** Values that break a field's type, its size, or the parser's assumptions. */
export const hostileValues: unknown[] = [
  null,
  0,
  -0,
  -1,
  2 ** 53 + 1,
  1e308,
  0.5,
  true,
  false,
  [],
  {},
  [null],
  [[[]]],
  ...hostileStrings,
  JSON.parse('{"__proto__": {"polluted": true}}'),
  { constructor: { prototype: { polluted: true } } },
  { "$.a[0]": 1, "a\\u0041": 2, '"': 3, "\\": 4 },
  { ["k".repeat(10_000)]: 1 },
  nested(150),
  nested(1200),
  Object.fromEntries(Array.from({ length: 11_000 }, (_, i) => [`k${i}`, i])),
  ...RAW_TEXTS.map((_, i) => rawSentinel(i)),
];

const jsonTypeOf = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "array" : Number.isInteger(v) ? "integer" : typeof v);

/** The JSON types a schema allows (undefined: anything). */
export function allowedTypes(spec: Spec, schema: Schema): Set<string> | undefined {
  const s = spec.deref(schema);
  if (s.const !== undefined) return new Set([jsonTypeOf(s.const)]);
  if (Array.isArray(s.enum)) return new Set(s.enum.map(jsonTypeOf));
  const alternatives = (s.anyOf ?? s.oneOf) as Schema[] | undefined;
  if (alternatives !== undefined) {
    const out = new Set<string>();
    for (const alt of alternatives) {
      const a = allowedTypes(spec, alt);
      if (a === undefined) return undefined;
      for (const t of a) out.add(t);
    }
    return out;
  }
  if (s.type === undefined) return s.properties !== undefined ? new Set(["object"]) : undefined;
  const types = new Set(Array.isArray(s.type) ? (s.type as string[]) : [s.type as string]);
  if (types.has("number")) types.add("integer");
  return types;
}

/** Whether a generated value breaks the JSON type its schema declares (null aside: see docs/testing.md). */
export function breaksType(spec: Spec, schema: Schema, value: unknown): boolean {
  if (value === null) return false;
  if (typeof value === "string" && value.startsWith("\u0001RAW(")) return false;
  const allowed = allowedTypes(spec, schema);
  if (allowed === undefined) return false;
  const t = jsonTypeOf(value);
  if (t === "number" && !Number.isFinite(value)) return false;
  return !allowed.has(t) && !(t === "integer" && allowed.has("number"));
}

/** Ids, by what a field or parameter names. */
const idHints: Record<string, fc.Arbitrary<string>> = {
  thread_id: fc.constantFrom("@thread", "@thread", "@interrupted", crypto.randomUUID(), ...garbageIds.slice(0, 4)),
  run_id: fc.constantFrom("@run", "@run", crypto.randomUUID(), ...garbageIds.slice(0, 4)),
  checkpoint_id: fc.constantFrom("@checkpoint", "@checkpoint", "@icheckpoint", crypto.randomUUID(), "not-a-checkpoint"),
  assistant_id: fc.constantFrom("@assistant", "@graph", "echo", "fail", "ask", crypto.randomUUID(), "no-such-graph"),
  graph_id: fc.constantFrom("echo", "ask", "fail", "no-such-graph"),
  cron_id: fc.constantFrom("@cron", "@cron", crypto.randomUUID(), ...garbageIds.slice(0, 4)),
  // Valid schedules that never fire during a test (on January 1st only), and invalid ones.
  schedule: fc.constantFrom("0 0 1 1 *", "15 3 1 1 *", "0 0 1 1 * ", "not a schedule", "61 * * * *", "0 0 30 2 *", ""),
  timezone: fc.constantFrom("UTC", "America/New_York", "Mars/Olympus", ""),
  webhook: fc.constantFrom("/hooks/run-done", "http://127.0.0.1:1/hook", "file:///etc/passwd", "ftp://example.com/x", "not a url", "/threads/@thread/state"),
};

export interface GenOptions {
  depth: number;
}

/** An arbitrary for values valid (mostly) against `schema`. */
export function fromSchema(spec: Spec, schema: unknown, name = "", depth = 0): fc.Arbitrary<unknown> {
  const s = spec.deref(schema);
  const hint = idHints[name];
  if (hint !== undefined) return hint;
  if (s.const !== undefined) return fc.constant(s.const);
  if (Array.isArray(s.enum)) return fc.constantFrom(...(s.enum as unknown[]));
  const alternatives = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
  if (alternatives !== undefined && depth < 4) return fc.oneof(...alternatives.map((a) => fromSchema(spec, a, name, depth + 1)));
  if (Array.isArray(s.allOf)) {
    const merged: Schema = {};
    for (const part of s.allOf) Object.assign(merged, spec.deref(part));
    return fromSchema(spec, merged, name, depth);
  }
  const types = Array.isArray(s.type) ? (s.type as string[]) : s.type === undefined ? (s.properties !== undefined ? ["object"] : []) : [s.type as string];
  if (types.length > 1) return fc.oneof(...types.map((t) => fromSchema(spec, { ...s, type: t }, name, depth)));
  switch (types[0] ?? "any") {
    case "string":
      if (s.format === "uuid") return fc.oneof(fc.uuid(), fc.constantFrom("@thread", "@run", "@assistant"));
      if (s.format === "date-time") return fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }).map((d) => d.toISOString());
      return fc.oneof({ weight: 4, arbitrary: fc.string({ maxLength: 12 }) }, { weight: 1, arbitrary: fc.constantFrom(...hostileStrings.slice(0, 16)) });
    case "integer":
      return fc.integer({ min: typeof s.minimum === "number" ? s.minimum : -5, max: typeof s.maximum === "number" ? Math.min(s.maximum, 200) : 200 });
    case "number":
      return fc.double({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true });
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "array":
      if (depth > 3) return fc.constant([]);
      return fc.array(fromSchema(spec, s.items ?? {}, name === "namespace" || name === "namespace_prefix" ? "" : name, depth + 1), { maxLength: 3 });
    case "object": {
      if (depth > 3) return fc.constant({});
      const properties = (s.properties ?? {}) as Record<string, unknown>;
      const keys = Object.keys(properties);
      if (keys.length === 0) return smallJsonObject;
      const required = new Set((s.required ?? []) as string[]);
      const record: Record<string, fc.Arbitrary<unknown>> = {};
      for (const key of keys) record[key] = fromSchema(spec, properties[key], key, depth + 1);
      return fc.record(record, { requiredKeys: keys.filter((k) => required.has(k)) });
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

const smallJsonObject = fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom(...hostileStrings.slice(0, 16))), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 });

export interface Mutation {
  /** What was done, for the report. */
  label: string;
  /** A declared field was given a value of a type its schema does not allow (or the body is not an object). */
  typeBroken: boolean;
}

/**
 * A body for `op`: generated from its schema, then (usually) one mutation: a
 * declared field given a hostile or wrong-typed value, an unknown key, a
 * removed required key, or the body replaced by something else entirely.
 */
export function bodyArbitrary(spec: Spec, op: Operation): fc.Arbitrary<{ body: unknown; mutation: Mutation }> {
  const schema = spec.deref(op.body);
  const properties = (schema.properties ?? {}) as Record<string, Schema>;
  const names = Object.keys(properties);
  const valid = fromSchema(spec, schema).map((body) => ({ body, mutation: { label: "as generated", typeBroken: false } }));
  const options: fc.WeightedArbitrary<{ body: unknown; mutation: Mutation }>[] = [{ weight: 3, arbitrary: valid }];
  if (names.length > 0) {
    options.push({
      weight: 4,
      arbitrary: fc.tuple(fromSchema(spec, schema), fc.constantFrom(...names), fc.nat({ max: hostileValues.length - 1 })).map(([base, field, i]) => {
        const value = hostileValues[i];
        const body = { ...(base !== null && typeof base === "object" ? base : {}), [field]: value };
        return { body, mutation: { label: `${field} = ${preview(value)}`, typeBroken: breaksType(spec, properties[field]!, value) } };
      }),
    });
    options.push({
      weight: 1,
      arbitrary: fc.tuple(fromSchema(spec, schema), fc.constantFrom("unknown_field", "__proto__", "constructor", "x".repeat(300))).map(([base, key]) => {
        const body = (base !== null && typeof base === "object" && !Array.isArray(base) ? JSON.parse(JSON.stringify(base)) : {}) as Record<string, unknown>;
        Object.defineProperty(body, key, { value: 1, enumerable: true, configurable: true, writable: true });
        return { body, mutation: { label: `extra key ${preview(key)}`, typeBroken: false } };
      }),
    });
  }
  options.push({
    weight: 1,
    arbitrary: fc.nat({ max: hostileValues.length - 1 }).map((i) => {
      const value = hostileValues[i];
      const notObject = value === null || typeof value !== "object" || Array.isArray(value);
      const isRaw = typeof value === "string" && value.startsWith("\u0001RAW(");
      return { body: value, mutation: { label: `body = ${preview(value)}`, typeBroken: notObject && !isRaw && value !== null } };
    }),
  });
  return fc.oneof(...options);
}

/** Query parameters: generated from their schemas, sometimes a value of the wrong type. */
export function queryArbitrary(spec: Spec, op: Operation): fc.Arbitrary<[string, string][]> {
  const params = op.parameters.filter((p) => p.in === "query");
  if (params.length === 0) return fc.constant([]);
  const wrong = fc.constantFrom("abc", "-1", "1.5", "1e400", "true", "", "null", "[]", "%00", "x".repeat(3000), "99999999999999999999");
  const each = params.map((p) =>
    fc.option(
      fc.oneof(
        { weight: 3, arbitrary: fromSchema(spec, p.schema, p.name).map((v) => (Array.isArray(v) ? v.map((x) => [p.name, String(x)] as [string, string]) : [[p.name, String(v)] as [string, string]])) },
        { weight: 1, arbitrary: wrong.map((v) => [[p.name, v] as [string, string]]) },
      ),
      { freq: 2 },
    ),
  );
  return fc.tuple(...each).map((lists) => lists.flatMap((l) => l ?? []));
}

/** A path parameter: a real id (token), a random UUID, or garbage. */
export function pathParamArbitrary(name: string): fc.Arbitrary<string> {
  const real =
    name === "thread_id"
      ? "@thread"
      : name === "run_id"
        ? "@run"
        : name === "checkpoint_id"
          ? "@checkpoint"
          : name === "assistant_id"
            ? "@assistant"
            : name === "cron_id"
              ? "@cron"
              : undefined;
  const options: fc.WeightedArbitrary<string>[] = [
    { weight: 1, arbitrary: fc.uuid() },
    { weight: 1, arbitrary: fc.constantFrom(...garbageIds) },
  ];
  if (real !== undefined) options.push({ weight: 4, arbitrary: fc.constant(real) });
  if (name === "thread_id") options.push({ weight: 2, arbitrary: fc.constant("@interrupted") });
  // One graph only: the first schema request of a graph compiles its TypeScript (tens of seconds on a loaded machine).
  if (name === "assistant_id") options.push({ weight: 2, arbitrary: fc.constantFrom("@graph", "echo") });
  if (name === "namespace") options.push({ weight: 3, arbitrary: fc.constantFrom("child", "inner", "child|inner", "") });
  return fc.oneof(...options);
}

export function preview(value: unknown): string {
  if (typeof value === "string") {
    const raw = new RegExp(`^${rawSentinel(0).replace("(0)", "\\((\\d+)\\)")}$`).exec(value);
    if (raw) return `raw ${RAW_TEXTS[Number(raw[1])]!.slice(0, 40)}${RAW_TEXTS[Number(raw[1])]!.length > 40 ? "…" : ""}`;
  }
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch (error) {
    text = `<${String(error)}>`;
  }
  return text.length > 80 ? `${text.slice(0, 77)}… (${text.length} chars)` : text;
}
