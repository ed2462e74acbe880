/**
 * Semantic store search, on the backends alone (no HTTP, no embedding
 * provider): the same items with random unit vectors, searched by the exact
 * scan on SQLite and on Postgres, and by pgvector's HNSW index on Postgres
 * (when the server has pgvector 0.8+), against the in-process limit: cosine
 * over every vector held in an array. Prints per-search latency
 * percentiles, the ratio to that limit, and pgvector's recall of the exact
 * top 10. The published dev server has no semantic search to compare with
 * (it ignores store.index).
 *
 *   npm run bench:store -- [items=10000] [dims=1536] [searches=30]
 *   (BATON_BENCH_UNIFORM=1 for uniformly random vectors)
 *
 * Two searches: "broad" (the whole bench prefix, no filter: the index's
 * case) and "narrow" (one namespace of ten and a filter matching one item in
 * twenty: Postgres ranks those few candidates in SQL).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { migrate as migratePostgres, openPool } from "../src/backends/postgres/database.ts";
import { PostgresStoreItems } from "../src/backends/postgres/records.ts";
import { openDatabase, migrate as migrateSqlite } from "../src/backends/sqlite/database.ts";
import { SqliteStoreItems } from "../src/backends/sqlite/records.ts";
import { bestScore } from "../src/backends/vectors.ts";
import { systemClock } from "../src/core/clock.ts";
import { createLogger } from "../src/core/logger.ts";
import type { StoreItems, StoreSearch } from "../src/core/ports.ts";

const items = Number(process.argv[2] ?? 10_000);
const dims = Number(process.argv[3] ?? 1_536);
const searches = Number(process.argv[4] ?? 30);
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** A deterministic unit vector per seed (mulberry32), uniformly spread: the hardest case for an HNSW index. */
function randomUnit(seed: number): number[] {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296 - 0.5;
  };
  const v = Array.from({ length: dims }, next);
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

/**
 * Embeddings as real ones are: near one of 100 topics (a topic's direction
 * plus noise a third its size), so neighbours are nearer than strangers.
 * With `BATON_BENCH_UNIFORM=1`, uniformly random vectors instead.
 */
const UNIFORM = process.env.BATON_BENCH_UNIFORM === "1";
function unitVector(seed: number): number[] {
  if (UNIFORM) return randomUnit(seed);
  const topic = randomUnit(7_000_000 + (seed % 100));
  const noise = randomUnit(seed);
  const v = topic.map((x, i) => x + noise[i]! / 3);
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

const namespaceOf = (i: number) => ["bench", `t${i % 10}`];
const valueOf = (i: number) => ({ kind: i % 20 === 3 ? "rare" : "common", n: i });

const SEARCHES: Record<string, Omit<StoreSearch, "vector">> = {
  broad: { namespace_prefix: ["bench"], limit: 10, offset: 0 },
  narrow: { namespace_prefix: ["bench", "t3"], filter: { kind: "rare" }, limit: 10, offset: 0 },
};

async function fill(store: StoreItems): Promise<void> {
  const started = Date.now();
  for (let i = 0; i < items; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, items - i) }, (_, j) => store.put(namespaceOf(i + j), `k${i + j}`, valueOf(i + j), { vectors: [{ field: "text", vector: unitVector(i + j) }] })),
    );
    if ((i / 50) % 40 === 0) process.stderr.write(`\r  ${i} of ${items} items put (${Math.round((Date.now() - started) / 1000)} s)`);
  }
  process.stderr.write(`\r  ${items} items put in ${Math.round((Date.now() - started) / 1000)} s\n`);
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

/** Runs each search `searches` times (queries seeded apart from the items); p50/p95 in ms and the keys found per query. */
async function measure(search: (query: number[], shape: Omit<StoreSearch, "vector">) => Promise<string[]>, shape: Omit<StoreSearch, "vector">) {
  const times: number[] = [];
  const found: string[][] = [];
  for (let q = 0; q < searches; q += 1) {
    const query = unitVector(1_000_000 + q);
    const started = process.hrtime.bigint();
    found.push(await search(query, shape));
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p95: percentile(times, 95), found };
}

/** The in-process limit: every vector in an array, cosine over those the search selects, top 10. */
function inMemory(): (query: number[], shape: Omit<StoreSearch, "vector">) => Promise<string[]> {
  const all = Array.from({ length: items }, (_, i) => ({ ns: namespaceOf(i), key: `k${i}`, value: valueOf(i), vector: Float32Array.from(unitVector(i)) }));
  return (query, shape) => {
    const candidates = all.filter((item) => shape.namespace_prefix.every((label, i) => item.ns[i] === label) && (shape.filter === undefined || item.value.kind === shape.filter.kind));
    const scored = candidates.map((item) => ({ key: item.key, score: bestScore(query, [item.vector]) ?? 0 }));
    scored.sort((a, b) => b.score - a.score);
    return Promise.resolve(scored.slice(0, shape.limit).map((item) => item.key));
  };
}

const viaStore = (store: StoreItems) => async (query: number[], shape: Omit<StoreSearch, "vector">) =>
  (await store.search({ ...shape, vector: query, maxCandidates: items + 1 })).map((item) => item.key);

async function main(): Promise<void> {
  const quiet = createLogger({ level: "warn", format: "json", write: (line) => process.stderr.write(line) });
  const name = `baton_bench_store_${process.pid}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(DATABASE_URL);
  url.pathname = `/${name}`;
  const pool = openPool({ url: url.toString(), max: 4 });
  const dir = mkdtempSync(join(tmpdir(), "baton-bench-store-"));
  try {
    await migratePostgres(pool);
    const indexed = new PostgresStoreItems(pool, systemClock);
    const choice = await indexed.prepareVectorSearch(dims, "auto", quiet);
    // Another instance on the same rows, as a process set to BATON_STORE_VECTOR_SEARCH=exact.
    const exact = new PostgresStoreItems(pool, systemClock);
    await exact.prepareVectorSearch(dims, "exact", quiet);
    console.log(`store search: ${items} items, ${dims} dims (${UNIFORM ? "uniformly random" : "near 100 topics"}), ${searches} searches each; pgvector: ${choice.search === "pgvector" ? "used" : `not used (${choice.reason})`}`);
    await fill(indexed);
    await pool.query("ANALYZE store_items; ANALYZE store_vectors");
    const sqliteDb = openDatabase({ path: join(dir, "bench.sqlite"), busyTimeoutMs: 5_000 });
    migrateSqlite(sqliteDb);
    const sqlite = new SqliteStoreItems(sqliteDb, systemClock);
    await fill(sqlite);

    const limit = inMemory();
    const rows: string[][] = [["search", "engine", "p50 ms", "p95 ms", "p50 / in-process limit", "recall@10 vs exact"]];
    for (const [label, shape] of Object.entries(SEARCHES)) {
      const base = await measure(limit, shape);
      rows.push([label, "in-process limit (array)", base.p50.toFixed(2), base.p95.toFixed(2), "1.00", "1.00"]);
      const engines: [string, StoreItems][] = [
        ["SQLite exact scan", sqlite],
        ["Postgres exact scan", exact],
        ...(choice.search === "pgvector" ? ([["Postgres pgvector", indexed]] as [string, StoreItems][]) : []),
      ];
      for (const [engine, store] of engines) {
        const result = await measure(viaStore(store), shape);
        let hits = 0;
        let wanted = 0;
        result.found.forEach((keys, q) => {
          const truth = new Set(base.found[q]);
          wanted += truth.size;
          hits += keys.filter((key) => truth.has(key)).length;
        });
        rows.push([label, engine, result.p50.toFixed(2), result.p95.toFixed(2), (result.p50 / base.p50).toFixed(2), (wanted === 0 ? 1 : hits / wanted).toFixed(2)]);
      }
    }
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
    for (const row of rows) console.log(row.map((cell, c) => cell.padEnd(widths[c]!)).join("  "));
    sqliteDb.close();
  } finally {
    await pool.end();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
