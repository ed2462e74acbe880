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
 * Whether pgvector's index can hold a vector: `dims` finite numbers, not all
 * zero (a cosine index leaves zero vectors out, and their distance is NaN).
 * The others are stored without `embedding_v` and scored by the exact scan,
 * which gives a zero vector cosine 0.
 */
export function indexable(vector: ArrayLike<number>, dims: number): boolean {
  if (vector.length !== dims) return false;
  let nonZero = false;
  for (let i = 0; i < vector.length; i += 1) {
    const x = vector[i]!;
    if (!Number.isFinite(x)) return false;
    if (x !== 0) nonZero = true;
  }
  return nonZero;
}

/**
 * Chooses the search for an index of `dims` and, when it is pgvector, makes
 * the database ready for it. Refuses (throws) only when `mode` is
 * "pgvector" and it cannot be had; "auto" falls back to the exact scan and
 * says why. One connection throughout, so a pool of one serves it.
 */
export async function prepareVectorSearch(pool: pg.Pool, dims: number, mode: VectorSearchMode, logger: Logger): Promise<VectorSearchChoice> {
  const client = await pool.connect();
  try {
    return await prepareOn(client, dims, mode, logger);
  } finally {
    client.release();
  }
}

async function prepareOn(client: pg.PoolClient, dims: number, mode: VectorSearchMode, logger: Logger): Promise<VectorSearchChoice> {
  const exact = async (reason: string): Promise<VectorSearchChoice> => {
    if (mode === "pgvector") throw new Error(`storeVectorSearch is "pgvector", but ${reason}. Install pgvector 0.8 or later on the database server, or set BATON_STORE_VECTOR_SEARCH=auto.`);
    const pgvector = await pgvectorStatus(client);
    // Another process may have set the column up: keep it filled, so its searches find these rows too.
    const fillColumn = pgvector === "installed" && (await columnDims(client)) === dims;
    return { search: "exact", pgvector, reason, fillColumn };
  };
  if (mode === "exact") return exact("BATON_STORE_VECTOR_SEARCH is exact");
  if (dims > HNSW_MAX_DIMS) return exact(`pgvector's HNSW index takes at most ${HNSW_MAX_DIMS} dimensions and store.index.dims is ${dims}`);
  const { rows } = await client.query<{ installed: string | null; available: string | null }>(
    "SELECT (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS installed, (SELECT default_version FROM pg_available_extensions WHERE name = 'vector') AS available",
  );
  const { installed, available } = rows[0] ?? { installed: null, available: null };
  if (installed === null && available === null) return exact("the database server does not have the pgvector extension");
  if (!atLeast(installed ?? available ?? "0", MIN_VERSION)) {
    return exact(
      installed !== null
        ? `the database has pgvector ${installed}, and filtered searches need 0.8.0 or later (ALTER EXTENSION vector UPDATE)`
        : `the database server's pgvector is ${available}, and filtered searches need 0.8.0 or later`,
    );
  }
  await takeSetupLock(client);
  try {
    await setUp(client, dims, logger);
  } catch (error) {
    const message = (error as Error).message;
    // A lost connection is retried by the caller; anything else leaves "auto" on the exact scan.
    if (mode === "pgvector" || isConnectionError(error)) throw error;
    logger.warn("store:pgvector-setup-failed", { reason: message });
    return await exact(`setting pgvector up failed: ${message}`);
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [SETUP_LOCK]).catch(() => undefined);
  }
  return { search: "pgvector", pgvector: "installed", reason: null, fillColumn: true };
}

const isConnectionError = (error: unknown) => {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && (code.startsWith("08") || code === "57P01" || code === "ECONNREFUSED" || code === "ECONNRESET");
};

/**
 * The set-up lock, tried every quarter second rather than waited on: a
 * session blocked on it would hold a snapshot, and CREATE INDEX
 * CONCURRENTLY in the holder waits for every older snapshot.
 */
async function takeSetupLock(client: pg.PoolClient): Promise<void> {
  for (;;) {
    const { rows } = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1) AS ok", [SETUP_LOCK]);
    if (rows[0]?.ok === true) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * The extension, the column, the rows stored before and the indexes, each
 * step committed on its own and skipped when already done: running
 * processes keep writing meanwhile (the indexes are built CONCURRENTLY).
 */
async function setUp(client: pg.PoolClient, dims: number, logger: Logger): Promise<void> {
  await client.query("CREATE EXTENSION IF NOT EXISTS vector");
  const had = await columnDims(client);
  if (had !== dims) {
    await client.query("BEGIN");
    try {
      // Stored embeddings all have `dims` numbers (start-up checked): a column typed for other dims is stale.
      if (had !== null) await client.query("ALTER TABLE store_vectors DROP COLUMN embedding_v");
      await client.query(`ALTER TABLE store_vectors ADD COLUMN embedding_v vector(${dims})`);
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    }
  }
  const filled = await fillStoredRows(client, dims, logger);
  if (filled > 0) logger.info("store:vectors-filled", { rows: filled, dims });
  // Rows without a vector (see the top of this file), found by an index of their own.
  await createIndex(client, "store_vectors_unfilled", "ON store_vectors (namespace, key) WHERE embedding_v IS NULL");
  await createIndex(client, "store_vectors_hnsw", "ON store_vectors USING hnsw (embedding_v vector_cosine_ops)", logger);
}

/** Builds the index CONCURRENTLY unless a valid one exists; one a crashed build left invalid is dropped first. */
async function createIndex(client: pg.PoolClient, name: string, definition: string, logger?: Logger): Promise<void> {
  const { rows } = await client.query<{ valid: boolean }>("SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = to_regclass($1)", [name]);
  if (rows[0]?.valid === true) return;
  if (rows[0] !== undefined) await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`);
  const started = Date.now();
  await client.query(`CREATE INDEX CONCURRENTLY ${name} ${definition}`);
  logger?.info("store:vector-index-built", { index: name, ms: Date.now() - started });
}

/**
 * Fills `embedding_v` of the rows that have none, in batches each committed
 * on its own, walking the primary key; a row a put replaced meanwhile is
 * left as that put wrote it. Returns how many were filled.
 */
async function fillStoredRows(client: pg.PoolClient, dims: number, logger: Logger): Promise<number> {
  let filled = 0;
  let after: [string, string, string] | undefined;
  for (let batch = 1; ; batch += 1) {
    const { rows } = await client.query<{ namespace: string; key: string; field: string; embedding: Uint8Array }>(
      `SELECT namespace, key, field, embedding FROM store_vectors
        WHERE embedding_v IS NULL ${after === undefined ? "" : "AND (namespace, key, field) > ($1, $2, $3)"}
        ORDER BY namespace, key, field LIMIT ${SCAN_BATCH}`,
      after ?? [],
    );
    if (rows.length === 0) return filled;
    const usable = rows.flatMap((row) => {
      const vector = decodeVector(row.embedding);
      return indexable(vector, dims) ? [{ ...row, vec: vectorText(vector) }] : [];
    });
    if (usable.length > 0) {
      await client.query(
        `UPDATE store_vectors AS s SET embedding_v = v.vec::vector FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS v (namespace, key, field, vec)
          WHERE s.namespace = v.namespace AND s.key = v.key AND s.field = v.field AND s.embedding_v IS NULL`,
        [usable.map((row) => row.namespace), usable.map((row) => row.key), usable.map((row) => row.field), usable.map((row) => row.vec)],
      );
    }
    filled += usable.length;
    const last = rows.at(-1)!;
    after = [last.namespace, last.key, last.field];
    if (batch % 20 === 0) logger.info("store:vectors-filling", { rows: filled });
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
  let exhaustive = false;
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
      // Nearest first: an item's first row is its best-matching text (zero vectors are not in the column: see indexable).
      const score = 1 - Number(row.distance);
      if (!best.has(id)) best.set(id, { namespace: row.namespace, key: row.key, score, updated_at: row.updated_at });
    }
    const ranked = [...best.values()];
    const edge = ranked.length >= keep ? ranked[keep - 1] : undefined;
    const last = rows.at(-1);
    if (edge !== undefined && last !== undefined && 1 - Number(last.distance) < edge.score) return ranked;
    if (rows.length < fetch) {
      // Fewer items than the page: every candidate was read, or pgvector ended the scan early
      // (hnsw.max_scan_tuples, a filter few rows pass). Then the few candidates are ranked in SQL, exactly.
      if (ranked.length >= keep || exhaustive) return ranked;
      await client.query("SET LOCAL enable_indexscan = off");
      exhaustive = true;
    } else {
      fetch *= 4;
    }
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
