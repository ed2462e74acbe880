/**
 * The records conformance suite on SQLite and on Postgres, and the checks
 * that make "the same answers" hold beyond the suite's cases: the shared
 * containment function against Postgres's own `@>`, and both backends
 * against each other (and the access filter's `matches`) on random
 * documents and filters.
 *
 * The Postgres database uses an ICU English collation, as many production
 * servers do (en_US): orders must not depend on it.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresBackend } from "../../src/backends/postgres/index.ts";
import { openDatabase } from "../../src/backends/sqlite/database.ts";
import { createSqliteBackend } from "../../src/backends/sqlite/index.ts";
import { contains, matches, type Filter, type FilterScalar } from "../../src/core/filter.ts";
import type { Backend } from "../../src/core/ports.ts";
import { ManualClock } from "../../src/testing/index.ts";
import { CONTAINMENT_CASES, describeRecords } from "../../src/testing/records-suite.ts";
import { DATABASE_URL } from "../helpers/postgres.ts";

const name = `baton_records_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
const url = (() => {
  const parsed = new URL(DATABASE_URL);
  parsed.pathname = `/${name}`;
  return parsed.toString();
})();

async function admin<T>(work: (client: pg.Client) => Promise<T>, connectionString = DATABASE_URL): Promise<T> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  await admin((client) => client.query(`CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`));
});
afterAll(async () => {
  await admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
});

const emptied = () =>
  admin((client) => client.query("TRUNCATE assistants, assistant_versions, threads, runs, checkpoints, checkpoint_writes, store_items CASCADE"), url);

describeRecords({ name: "sqlite (in memory)", create: (clock) => createSqliteBackend({ path: ":memory:", busyTimeoutMs: 0, clock }) });

describeRecords({
  name: "postgres",
  create: async (clock) => {
    const backend = await createPostgresBackend({ url, poolSize: 4, clock, migrate: true });
    await emptied();
    return backend;
  },
});

/** A small deterministic generator (a fixed seed: the same cases on every run). */
function random(seed: number) {
  let state = seed;
  const next = () => {
    state = (Math.imul(state, 1103515245) + 12345) & 0x7fffffff;
    return state / 0x7fffffff;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const scalars = [0, 1, 1.5, -2, true, false, null, "", "a", "1", "A", 'q"', "\\"];
  const keys = ["a", "b", "c", "a.b", '"', "$"];
  const value = (depth: number): unknown => {
    const roll = next();
    if (depth <= 0 || roll < 0.4) return pick(scalars);
    if (roll < 0.7) return Array.from({ length: Math.floor(next() * 4) }, () => value(depth - 1));
    return object(depth - 1);
  };
  const object = (depth: number): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (let i = Math.floor(next() * 4); i > 0; i--) out[pick(keys)] = value(depth);
    return out;
  };
  /** Mostly a part of `of` (so that many filters match), sometimes anything. */
  const part = (of: unknown): unknown => {
    if (Array.isArray(of)) return of.filter(() => next() < 0.6).map((x) => (next() < 0.8 ? part(x) : value(1)));
    if (typeof of === "object" && of !== null) {
      const out: Record<string, unknown> = {};
      for (const [key, x] of Object.entries(of)) if (next() < 0.6) out[key] = next() < 0.85 ? part(x) : value(1);
      return out;
    }
    return next() < 0.9 ? of : pick(scalars);
  };
  /** An access filter over `of`'s keys, its operands mostly taken from `of` (so that many match). */
  const access = (of: Record<string, unknown>): Filter => {
    const operand = (at: unknown): FilterScalar => {
      const candidates = Array.isArray(at) ? at : [at];
      const own = candidates.filter((x): x is FilterScalar => x === null || (x !== undefined && typeof x !== "object"));
      return own.length > 0 && next() < 0.8 ? pick(own) : pick<FilterScalar>(scalars);
    };
    const out: Filter = {};
    const own = Object.keys(of);
    for (let i = 1 + Math.floor(next() * 2); i > 0; i--) {
      const key = own.length > 0 && next() < 0.85 ? pick(own) : pick(keys);
      const at = of[key];
      const roll = next();
      // Mostly the operators that can match what the field holds.
      if (Array.isArray(at) && roll < 0.6) out[key] = roll < 0.3 ? { $contains: operand(at) } : { $contains: Array.from({ length: Math.floor(next() * 3) }, () => operand(at)) };
      else if (roll < 0.3) out[key] = operand(at);
      else if (roll < 0.5) out[key] = { $eq: operand(at) };
      else if (roll < 0.9) out[key] = { $in: Array.from({ length: Math.floor(next() * 4) }, () => operand(at)) };
      else out[key] = { $contains: operand(at) };
    }
    return out;
  };
  return { next, value, object, part, access };
}

describe("contains() is Postgres's jsonb @>", () => {
  it("on every documented case and on 5,000 random pairs", async () => {
    const gen = random(11);
    const pairs: [string, string][] = CONTAINMENT_CASES.map(([document, filter]) => [document, filter]);
    for (let i = 0; i < 5_000; i++) {
      const document = gen.value(4);
      pairs.push([JSON.stringify(document), JSON.stringify(gen.next() < 0.8 ? gen.part(document) : gen.value(3))]);
    }
    const answers = await admin(async (client) => {
      const { rows } = await client.query<{ contained: boolean }>(
        "SELECT d::jsonb @> f::jsonb AS contained FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS p(d, f, n) ORDER BY n",
        [pairs.map(([document]) => document), pairs.map(([, filter]) => filter)],
      );
      return rows.map((row) => row.contained);
    });
    const differ = pairs.filter(([document, filter], i) => contains(JSON.parse(document), JSON.parse(filter)) !== answers[i]);
    expect(differ).toEqual([]);
    // The random pairs are not all trivial.
    expect(answers.filter(Boolean).length).toBeGreaterThan(1_000);
    expect(answers.filter((x) => !x).length).toBeGreaterThan(500);
  });

  it("never recurses: documents and filters 200,000 levels deep", () => {
    const depth = 200_000;
    const array = JSON.parse("[".repeat(depth) + "]".repeat(depth)) as unknown;
    const object = JSON.parse('{"k":'.repeat(depth) + "1" + "}".repeat(depth)) as unknown;
    expect(contains(array, array)).toBe(true);
    expect(contains(object, object)).toBe(true);
    expect(contains({ a: object }, { a: object })).toBe(true);
    expect(contains(object, { k: { k: 2 } })).toBe(false);
  });
});

describe("SQLite and Postgres give the same answers", () => {
  let sqlite: Backend;
  let postgres: Backend;
  beforeAll(async () => {
    const clock = new ManualClock();
    sqlite = createSqliteBackend({ path: ":memory:", busyTimeoutMs: 0, clock });
    postgres = await createPostgresBackend({ url, poolSize: 2, clock, migrate: true });
    await emptied();
  });
  afterAll(async () => {
    await sqlite.close();
    await postgres.close();
  });

  it("on 300 random records searched with 300 random filters, through every filtered field", async () => {
    const gen = random(29);
    const documents = Array.from({ length: 300 }, () => gen.object(3));
    for (const backend of [sqlite, postgres]) {
      for (const [i, document] of documents.entries()) {
        const id = `r${String(i).padStart(3, "0")}`;
        await backend.threads.create({ thread_id: id, metadata: document, if_exists: "raise" });
        await backend.threads.setState(id, { values: document, interrupts: {}, status: "idle" });
        await backend.items.put(["ns"], id, document);
      }
    }
    let matched = 0;
    for (let i = 0; i < 300; i++) {
      const filter = (gen.next() < 0.8 ? gen.part(documents[i]) : gen.object(2)) as Record<string, unknown>;
      const answer = async (backend: Backend) => ({
        metadata: (await backend.threads.search({ limit: 1_000, offset: 0, metadata: filter, sort_by: "thread_id", sort_order: "asc" })).map((t) => t.thread_id),
        values: (await backend.threads.search({ limit: 1_000, offset: 0, values: filter, sort_by: "thread_id", sort_order: "asc" })).map((t) => t.thread_id),
        count: await backend.threads.count({ metadata: filter }),
        items: (await backend.items.search({ namespace_prefix: ["ns"], filter, limit: 1_000, offset: 0 })).map((item) => item.key).sort(),
      });
      const [fromSqlite, fromPostgres] = [await answer(sqlite), await answer(postgres)];
      expect(fromSqlite, JSON.stringify(filter)).toEqual(fromPostgres);
      expect(fromSqlite.count).toBe(fromSqlite.metadata.length);
      matched += fromSqlite.metadata.length;
    }
    // The filters are not all trivial (matching everything or nothing).
    expect(matched).toBeGreaterThan(300);
    expect(matched).toBeLessThan(300 * 300);
  });
});

describe("SQLite and Postgres give the same answers to access filters, and both what matches() says", () => {
  let sqlite: Backend;
  let postgres: Backend;
  beforeAll(async () => {
    const clock = new ManualClock();
    sqlite = createSqliteBackend({ path: ":memory:", busyTimeoutMs: 0, clock });
    postgres = await createPostgresBackend({ url, poolSize: 2, clock, migrate: true });
    await emptied();
  });
  afterAll(async () => {
    await sqlite.close();
    await postgres.close();
  });

  it("on 200 random records searched with 300 random access filters (some with a client filter too), through every scoped search", async () => {
    const gen = random(47);
    const documents = Array.from({ length: 200 }, () => gen.object(2));
    const id = (i: number) => `r${String(i).padStart(3, "0")}`;
    for (const backend of [sqlite, postgres]) {
      for (const [i, document] of documents.entries()) {
        await backend.threads.create({ thread_id: id(i), metadata: document, if_exists: "raise" });
        await backend.assistants.create({ assistant_id: id(i), graph_id: "g", config: {}, context: {}, metadata: document, name: id(i), description: null, if_exists: "raise" });
        await backend.items.put(["ns"], id(i), document);
      }
    }
    /** How many filters matched no record, one, and more than one. */
    const outcomes = [0, 0, 0];
    for (let i = 0; i < 300; i++) {
      const document = documents[i % documents.length]!;
      const access = gen.access(document);
      const client = gen.next() < 0.3 ? (gen.part(document) as Record<string, unknown>) : undefined;
      const all = { limit: 1_000, offset: 0 };
      const answer = async (backend: Backend) => ({
        threads: (await backend.threads.search({ ...all, metadata: client, access, sort_by: "thread_id", sort_order: "asc" })).map((t) => t.thread_id),
        count: await backend.threads.count({ metadata: client, access }),
        assistants: (await backend.assistants.search({ ...all, metadata: client, access, sort_by: "assistant_id", sort_order: "asc" })).map((a) => a.assistant_id),
        items: (await backend.items.search({ namespace_prefix: ["ns"], filter: client, access, ...all })).map((item) => item.key).sort(),
      });
      const label = JSON.stringify({ client, access });
      const [fromSqlite, fromPostgres] = [await answer(sqlite), await answer(postgres)];
      expect(fromSqlite, label).toEqual(fromPostgres);
      const want = documents.flatMap((d, j) => (matches(d, access) && (client === undefined || contains(d, client)) ? [id(j)] : []));
      expect(fromSqlite.threads, label).toEqual(want);
      expect(fromSqlite.assistants, label).toEqual(want);
      expect(fromSqlite.items, label).toEqual(want);
      expect(fromSqlite.count, label).toBe(want.length);
      outcomes[Math.min(want.length, 2)]! += 1;
    }
    // The filters are not all trivial: some match nothing, some one record, some several.
    expect(outcomes[0]).toBeGreaterThan(20);
    expect(outcomes[1]).toBeGreaterThan(20);
    expect(outcomes[2]).toBeGreaterThan(40);
  });
});

describe("SQLite's baton_contains", () => {
  it("answers 0, never an error, for stored text that is not JSON or not text", () => {
    const db = openDatabase({ path: ":memory:", busyTimeoutMs: 0 });
    try {
      const ask = (document: unknown, filter: unknown) =>
        (db.prepare("SELECT baton_contains(?, ?) AS r").get(document, filter) as { r: number }).r;
      expect(ask('{"a":1}', '{"a":1}')).toBe(1);
      expect(ask('{"a":1', '{"a":1}')).toBe(0);
      expect(ask('{"a":1}', "{")).toBe(0);
      expect(ask(null, "{}")).toBe(0);
      expect(ask(Buffer.from('{"a":1}'), '{"a":1}')).toBe(0);
      expect(ask(5, "5")).toBe(0);
      expect(ask("[".repeat(100_000) + "]".repeat(100_000), "[]")).toBe(1);
      // The access filter's functions, alike.
      const filter = (document: unknown) => (db.prepare("SELECT baton_filter(?, ?) AS r").get(document, '[{"key":"a","op":"eq","operand":1}]') as { r: number }).r;
      expect(filter('{"a":1}')).toBe(1);
      expect(filter('{"a":1')).toBe(0);
      expect(filter(null)).toBe(0);
      expect(filter(Buffer.from('{"a":1}'))).toBe(0);
      expect((db.prepare("SELECT baton_item_filter(?, ?, ?, ?) AS r").get("{", "ns\u001f", "k", "[]") as { r: number }).r).toBe(0);
    } finally {
      db.close();
    }
  });
});
