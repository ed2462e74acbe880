/**
 * The scale-out database: a bounded node-postgres pool, a transaction
 * helper, and versioned migrations that several processes may run at once
 * (a session advisory lock makes them take turns).
 */
import { readdirSync, readFileSync } from "node:fs";
import pg from "pg";

const MIGRATIONS_DIR = new URL("./migrations/", import.meta.url);
/** Advisory lock key of Baton's migrations ("baton" in ASCII). */
const MIGRATION_LOCK = 0x626174_6f6e;

export type Queryable = pg.Pool | pg.PoolClient;

export interface PoolOptions {
  url: string;
  /** Connections this process opens at most. */
  max: number;
  /** Called when an idle connection fails (the pool drops it and opens another when needed). */
  onError?: (error: Error) => void;
}

const INT8_OID = 20;
// BIGINT (epoch milliseconds, sequence numbers) as numbers: they stay far
// below 2^53.
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export function openPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({ connectionString: options.url, max: options.max, types, connectionTimeoutMillis: 10_000 });
  // Without a listener an idle client's error (a restarted server, a dropped
  // connection) would crash the process.
  pool.on("error", (error) => options.onError?.(error));
  return pool;
}

/**
 * Runs `work` in one transaction on one connection; rolls back if it throws.
 * A transaction Postgres picked as a deadlock victim is run again (3 tries).
 */
export async function transaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transactionOnce(pool, work);
    } catch (error) {
      // Postgres rolled the victim of a deadlock back whole: run it again.
      // Lock order (thread before run, several runs by run_id) makes this rare.
      if (pgCode(error) !== DEADLOCK_DETECTED || attempt >= 3) throw error;
    }
  }
}

async function transactionOnce<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query("BEGIN");
    const result = await work(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    try {
      await client.query("ROLLBACK");
    } catch {
      broken = true;
    }
    throw error;
  } finally {
    client.release(broken);
  }
}

/** The Postgres error code of a failed query, if any. */
export const pgCode = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "string" ? error.code : undefined;

export const UNIQUE_VIOLATION = "23505";
export const DEADLOCK_DETECTED = "40P01";

/**
 * Applies every migration newer than the database's version, each in its own
 * transaction, holding an advisory lock so concurrent callers take turns.
 * Returns the versions it applied. Refuses a database newer than the code.
 */
export async function migrate(pool: pg.Pool): Promise<number[]> {
  const files = readdirSync(MIGRATIONS_DIR)
    .filter((name) => /^\d{4}_.+\.sql$/.test(name))
    .sort();
  const latest = files.length === 0 ? 0 : Number(files.at(-1)!.slice(0, 4));
  const client = await pool.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
    try {
      await client.query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)");
      const { rows } = await client.query<{ v: number }>("SELECT COALESCE(MAX(version), 0)::int AS v FROM schema_migrations");
      const current = rows[0]!.v;
      if (current > latest) {
        throw new Error(`The database is at schema version ${current}, newer than this Baton knows (${latest}). Upgrade Baton first.`);
      }
      const applied: number[] = [];
      for (const name of files) {
        const version = Number(name.slice(0, 4));
        if (version <= current) continue;
        const sql = readFileSync(new URL(name, MIGRATIONS_DIR), "utf8");
        await client.query("BEGIN");
        try {
          await client.query(sql);
          await client.query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", [version, new Date().toISOString()]);
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK");
          throw new Error(`Migration ${name} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
        }
        applied.push(version);
      }
      return applied;
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]);
    }
  } finally {
    client.release();
  }
}

/** Advisory lock key of the processes sharing a database ("baton-m" in ASCII). */
const MODE_LOCK = 0x626174_6f6e2d;

/**
 * Declares how this process uses the database, for the lifetime of one
 * dedicated connection: processes with Redis share it; a process without
 * Redis (whose events stay in its memory) must be alone. Returns a release
 * function, or throws naming the conflict.
 */
export async function holdModeLock(url: string, alone: boolean, onLost: (error: Error) => void = () => undefined): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, keepAlive: true });
  // Losing this connection releases the lock: the guard is gone until restart, say so.
  client.on("error", onLost);
  await client.connect();
  const { rows } = await client.query<{ ok: boolean }>(
    alone ? "SELECT pg_try_advisory_lock($1) AS ok" : "SELECT pg_try_advisory_lock_shared($1) AS ok",
    [MODE_LOCK],
  );
  if (!rows[0]?.ok) {
    await client.end();
    throw new Error(
      alone
        ? "Another Baton process uses this database. Without REDIS_URL, events stay in one process's memory, so only one process may serve it: set REDIS_URL on every process, or stop the others."
        : "A Baton process without REDIS_URL serves this database alone; its events would not reach this one. Set REDIS_URL on it too, or stop it.",
    );
  }
  return async () => {
    await client.end().catch(() => undefined);
  };
}
