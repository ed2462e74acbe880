/**
 * pgvector for the store's semantic search on Postgres (docs/store.md,
 * "pgvector"). Embeddings stay in `store_vectors.embedding` (float32 bytes,
 * what the exact scan reads and SQLite stores); with pgvector they are also
 * in `embedding_v vector(<dims>)`, under an HNSW index on cosine distance,
 * and a search asks the index for the nearest rows instead of scoring every
 * candidate in the process.
 *
 * Set up at start, once per database, by whichever process comes first (an
 * advisory lock): the extension, the column (retyped when `dims` changed on
 * an empty store), the rows stored before (filled in batches), the index.
 * A row some process wrote without the column (one started before it
 * existed) is still found: a search also scores such rows by the exact scan
 * and merges both rankings.
 */
import type pg from "pg";
import type { Logger } from "../../core/logger.ts";
import { decodeVector, SCAN_BATCH, type RankedKey } from "../vectors.ts";
import { pgvectorStatus, type PgvectorStatus } from "./database.ts";

/** How the store's semantic search is computed (storeVectorSearch, BATON_STORE_VECTOR_SEARCH). */
export type VectorSearchMode = "auto" | "exact" | "pgvector";

/** What start-up chose, for `store:ready` and the doctor. */
export interface VectorSearchChoice {
  /** "pgvector": the HNSW index; "exact": every candidate scored in the process. */
  search: "pgvector" | "exact";
  pgvector: PgvectorStatus;
  /** Why the exact scan, when it is not what was asked for or pgvector is there; null otherwise. */
  reason: string | null;
  /** Whether puts fill `embedding_v` (the column exists for these dims), whatever the search. */
  fillColumn: boolean;
}

/** pgvector's HNSW index takes `vector` columns of at most 2,000 dimensions. */
export const HNSW_MAX_DIMS = 2_000;
/** Iterative index scans (`hnsw.iterative_scan`), which filtered searches need, came with pgvector 0.8.0. */
const MIN_VERSION = [0, 8, 0] as const;
/** Advisory lock key taken while one process sets the index up ("baton" and "v" in ASCII, as the migration lock is "baton"). */
const SETUP_LOCK = 0x626174_6f6e76;

/** pgvector's text form of a vector, of the float32 values Baton stores (so both columns hold the same numbers). */
export function vectorText(vector: ArrayLike<number>): string {
  return `[${Array.from(Float32Array.from(vector)).join(",")}]`;
}

const atLeast = (version: string, min: readonly number[]) => {
  const parts = version.split(".").map((part) => Number.parseInt(part, 10));
  for (let i = 0; i < min.length; i += 1) {
    const have = parts[i] ?? 0;
    if (have !== min[i]) return have > min[i]!;
  }
  return true;
};

/** The dims `embedding_v` is typed with, or null when the column does not exist. */
async function columnDims(db: pg.Pool | pg.PoolClient): Promise<number | null> {
  const { rows } = await db.query<{ dims: number }>(
    "SELECT atttypmod AS dims FROM pg_attribute WHERE attrelid = 'store_vectors'::regclass AND attname = 'embedding_v' AND NOT attisdropped",
  );
  return rows[0]?.dims ?? null;
}

/**
 * Chooses the search for an index of `dims` and, when it is pgvector, makes
 * the database ready for it. Refuses (throws) only when `mode` is
 * "pgvector" and it cannot be had; "auto" falls back to the exact scan and
 * says why.
 */
export async function prepareVectorSearch(pool: pg.Pool, dims: number, mode: VectorSearchMode, logger: Logger): Promise<VectorSearchChoice> {
  const pgvector = await pgvectorStatus(pool);
  const exact = async (reason: string): Promise<VectorSearchChoice> => {
    if (mode === "pgvector") throw new Error(`storeVectorSearch is "pgvector", but ${reason}. Install pgvector 0.8 or later on the database server, or set BATON_STORE_VECTOR_SEARCH=auto.`);
    // Another process may have set the column up: keep it filled, so its searches find these rows too.
    const fillColumn = pgvector === "installed" && (await columnDims(pool)) === dims;
    return { search: "exact", pgvector, reason, fillColumn };
  };
  if (mode === "exact") return exact("BATON_STORE_VECTOR_SEARCH is exact");
  if (dims > HNSW_MAX_DIMS) return exact(`pgvector's HNSW index takes at most ${HNSW_MAX_DIMS} dimensions and store.index.dims is ${dims}`);
  if (pgvector === "absent") return exact("the database server does not have the pgvector extension");

  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock($1)", [SETUP_LOCK]);
    await client.query("SAVEPOINT extension");
    try {
      await client.query("CREATE EXTENSION IF NOT EXISTS vector");
    } catch (error) {
      await client.query("ROLLBACK TO SAVEPOINT extension");
      await client.query("COMMIT");
      return await exact(`CREATE EXTENSION vector failed: ${(error as Error).message}`);
    }
    const { rows } = await client.query<{ version: string }>("SELECT extversion AS version FROM pg_extension WHERE extname = 'vector'");
    const version = rows[0]?.version ?? "0";
    if (!atLeast(version, MIN_VERSION)) {
      await client.query("COMMIT");
      return await exact(`the database has pgvector ${version}, and filtered searches need 0.8.0 or later (ALTER EXTENSION vector UPDATE)`);
    }
    const had = await columnDims(client);
    if (had !== null && had !== dims) {
      // Stored embeddings all have `dims` numbers (start-up checked): a column typed for other dims is stale.
      await client.query("ALTER TABLE store_vectors DROP COLUMN embedding_v");
    }
    if (had !== dims) await client.query(`ALTER TABLE store_vectors ADD COLUMN embedding_v vector(${dims})`);
    const filled = await fillStoredRows(client);
    if (filled > 0) logger.info("store:vectors-filled", { rows: filled, dims });
    // Rows written without the column (see the top of this file), found by an index of their own.
    await client.query("CREATE INDEX IF NOT EXISTS store_vectors_unfilled ON store_vectors (namespace, key) WHERE embedding_v IS NULL");
    await client.query("CREATE INDEX IF NOT EXISTS store_vectors_hnsw ON store_vectors USING hnsw (embedding_v vector_cosine_ops)");
    await client.query("COMMIT");
    return { search: "pgvector", pgvector: "installed", reason: null, fillColumn: true };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** Fills `embedding_v` of the rows that have none, a batch at a time; returns how many. */
async function fillStoredRows(client: pg.PoolClient): Promise<number> {
  let filled = 0;
  for (;;) {
    const { rows } = await client.query<{ id: string; embedding: Uint8Array }>(
      `SELECT ctid::text AS id, embedding FROM store_vectors WHERE embedding_v IS NULL LIMIT ${SCAN_BATCH}`,
    );
    if (rows.length === 0) return filled;
    await client.query("UPDATE store_vectors SET embedding_v = v.vec::vector FROM unnest($1::text[], $2::text[]) AS v (id, vec) WHERE store_vectors.ctid = v.id::tid", [
      rows.map((row) => row.id),
      rows.map((row) => vectorText(decodeVector(row.embedding))),
    ]);
    filled += rows.length;
  }
}

/** A row of the index search: an embedding's item and its distance to the query. */
interface NearRow {
  namespace: string;
  key: string;
  updated_at: Date | string;
  distance: number | null;
}

/** A ranked item with what the listing order needs to break ties. */
export interface IndexedRank extends RankedKey {
  updated_at: Date | string;
}

/**
 * The best `keep` items by their nearest embedding, from the HNSW index:
 * rows nearest first, read until `keep` items are found and every row as
 * near as the last one kept is in (so ties at the edge are all seen).
 * `candidates` is the store_items query (namespace, key, updated_at) of the
 * search's conditions. Runs in the caller's read-only transaction.
 */
export async function nearestItems(client: pg.PoolClient, candidates: string, args: unknown[], query: number[], keep: number): Promise<IndexedRank[]> {
  // Without iterative scans, a filter applied after the index would leave fewer than `keep` rows.
  await client.query("SET LOCAL hnsw.iterative_scan = strict_order");
  await client.query(`SET LOCAL hnsw.ef_search = ${Math.min(1_000, Math.max(40, keep))}`);
  const q = args.length + 1;
  let fetch = Math.max(keep, 1) * 2;
  for (;;) {
    const { rows } = await client.query<NearRow>(
      `SELECT v.namespace, v.key, i.updated_at, v.embedding_v <=> $${q}::vector AS distance
         FROM store_vectors v JOIN (${candidates}) AS i ON v.namespace = i.namespace AND v.key = i.key
        WHERE v.embedding_v IS NOT NULL ORDER BY v.embedding_v <=> $${q}::vector LIMIT ${fetch}`,
      [...args, vectorText(query)],
    );
    const best = new Map<string, IndexedRank>();
    for (const row of rows) {
      const id = JSON.stringify([row.namespace, row.key]);
      // Nearest first: an item's first row is its best-matching text. A zero vector's distance is NaN: cosine 0, as the exact scan scores it.
      const score = row.distance === null || Number.isNaN(Number(row.distance)) ? 0 : 1 - Number(row.distance);
      if (!best.has(id)) best.set(id, { namespace: row.namespace, key: row.key, score, updated_at: row.updated_at });
    }
    const ranked = [...best.values()];
    const edge = ranked.length >= keep ? ranked[keep - 1] : undefined;
    const last = rows.at(-1);
    const complete = rows.length < fetch || (edge !== undefined && last !== undefined && 1 - Number(last.distance) < edge.score);
    if (complete) return ranked;
    fetch *= 4;
  }
}

/** Whether some embedding has no `embedding_v` (written by a process without the column); an index probe. */
export async function hasUnfilledRows(client: pg.PoolClient): Promise<boolean> {
  const { rows } = await client.query<{ some: boolean }>("SELECT EXISTS (SELECT 1 FROM store_vectors WHERE embedding_v IS NULL) AS some");
  return rows[0]?.some === true;
}

const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
const timeOf = (value: Date | string | undefined) => (value === undefined ? 0 : value instanceof Date ? value.getTime() : Date.parse(value));

/**
 * Both rankings merged: an item's best score, highest first; equal scores
 * in the listing order (last updated first, then namespace and key in
 * byte order, as `COLLATE "C"`).
 */
export function mergeRankings(...rankings: RankedKey[][]): RankedKey[] {
  const best = new Map<string, RankedKey>();
  for (const entry of rankings.flat()) {
    const id = JSON.stringify([entry.namespace, entry.key]);
    const seen = best.get(id);
    if (seen === undefined || entry.score > seen.score) best.set(id, entry);
  }
  return [...best.values()]
    .sort((a, b) => b.score - a.score || timeOf(b.updated_at) - timeOf(a.updated_at) || utf8Order(a.namespace, b.namespace) || utf8Order(a.key, b.key))
    .map(({ namespace, key, score }) => ({ namespace, key, score }));
}
