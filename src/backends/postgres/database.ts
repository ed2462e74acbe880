/**
 * The scale-out database: a bounded node-postgres pool, a transaction
 * helper, and versioned migrations that several processes may run at once
 * (a session advisory lock makes them take turns).
 */
import { readdirSync, readFileSync } from "node:fs";
import pg from "pg";
import type { Clock, ClockSample } from "../../core/clock.ts";
import { BatonError, ErrorCode } from "../../core/errors.ts";

const MIGRATIONS_DIR = new URL("./migrations/", import.meta.url);
/** Advisory lock key of Baton's migrations ("baton" in ASCII). */
const MIGRATION_LOCK = 0x626174_6f6e;

export type Queryable = pg.Pool | pg.PoolClient;
export type PgvectorStatus = "installed" | "available" | "absent";

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

/**
 * Whether `error` says the connection to Postgres is gone or cannot be made
 * (the server restarted, failed over, terminated the backend, or is not
 * accepting connections yet), as opposed to a statement Postgres refused.
 */
export function isConnectionError(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const code = pgCode(error);
  if (code !== undefined) {
    // Class 08: connection exception; 57P01-57P03: admin/crash shutdown, cannot connect now; 53300: too many connections.
    if (code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03" || code === "53300") return true;
    if (["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ECONNABORTED", "EAI_AGAIN", "ENOTFOUND"].includes(code)) return true;
  }
  const message = error instanceof Error ? error.message : "";
  return /^Connection terminated|not queryable|timeout exceeded when trying to connect|^Query read timeout|Connection terminated due to connection timeout/.test(message);
}

/**
 * The error a request gets when the database cannot answer: a 503 the
 * client may retry, with no driver text in it. The driver's error is the
 * cause (for logs).
 */
export function databaseUnavailable(error: unknown): BatonError {
  // Refused, not accepting connections yet, full, or no answer to the connect: it never had the connection.
  const code = pgCode(error);
  const lost = code !== "ECONNREFUSED" && code !== "57P03" && code !== "53300" && !/trying to connect|connection timeout/.test(error instanceof Error ? error.message : "");
  return new BatonError(
    ErrorCode.unavailable,
    lost ? "The database connection was lost; retry the request." : "The database is unreachable; retry the request.",
    { cause: error, retryAfterSeconds: 1 },
  );
}

/** Turns a connection error into `databaseUnavailable`; anything else passes unchanged. */
export function asUnavailable(error: unknown): unknown {
  return isConnectionError(error) ? databaseUnavailable(error) : error;
}

export function openPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({ connectionString: options.url, max: options.max, types, connectionTimeoutMillis: 10_000, keepAlive: true });
  // Without a listener an idle client's error (a restarted server, a dropped
  // connection) would crash the process.
  pool.on("error", (error) => options.onError?.(error));
  // The pool listens to a client only while it is idle: a client checked out
  // for a transaction whose connection dies (pg_terminate_backend, a
  // restart) would emit 'error' to nobody, which crashes the process. Its
  // query fails on its own; the transaction then discards the client.
  pool.on("connect", (client) => {
    client.on("error", () => undefined);
  });
  // A statement on a lost connection fails as "the database is unavailable" (503), not as a driver error.
  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  pool.query = ((...args: unknown[]) => {
    if (typeof args.at(-1) === "function") return query(...args);
    return (query(...args) as Promise<unknown>).catch((error: unknown) => {
      throw asUnavailable(error);
    });
  }) as typeof pool.query;
  return pool;
}

/**
 * Runs `work` in one transaction on one connection; rolls back if it throws.
 * A transaction Postgres picked as a deadlock victim is run again (3 tries).
 * A lost connection fails it with `databaseUnavailable` (the transaction
 * was rolled back by Postgres, or, if the connection died while COMMIT was
 * on its way, may have committed: callers that must know re-read).
 */
export async function transaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transactionOnce(pool, work);
    } catch (error) {
      // Postgres rolled the victim of a deadlock back whole: run it again.
      // Lock order (thread before run, several runs by run_id) makes this rare.
      if (pgCode(error) !== DEADLOCK_DETECTED || attempt >= 3) throw asUnavailable(error);
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

/**
 * Retries `task` while the database is unavailable (a lost connection, a
 * restart): `delaysMs` are the waits between tries, and no try starts
 * later than one and a half times their sum after the first (so tries that
 * hang on a connect do not multiply the wait). For statements that are safe to repeat (reads,
 * idempotent writes): a worker's checkpoints and outcomes, and reads a
 * request makes (its client waits a few seconds more, then gets the 503).
 * A pool checkout that timed out is not retried: the pool is full (more
 * tries would only queue again) or the server does not answer at all.
 */
export async function retryUnavailable<T>(task: (retry: number) => Promise<T>, delaysMs: readonly number[] = RETRY_DELAYS_MS): Promise<T> {
  const started = Date.now();
  const budgetMs = 1.5 * delaysMs.reduce((sum, ms) => sum + ms, 0);
  for (let retry = 0; ; retry++) {
    try {
      return await task(retry);
    } catch (error) {
      const cause = error instanceof BatonError ? error.cause : error;
      const retryable = isConnectionError(cause) && !isCheckoutTimeout(cause);
      if (!retryable || retry >= delaysMs.length || Date.now() - started + delaysMs[retry]! > budgetMs) throw error;
      await new Promise((resolve) => setTimeout(resolve, delaysMs[retry]));
    }
  }
}

/** pg-pool's answer when no connection could be had within `connectionTimeoutMillis`. */
const isCheckoutTimeout = (error: unknown): boolean => error instanceof Error && /timeout exceeded when trying to connect/.test(error.message);

/** About 7 s in all: covers a terminated connection or a Postgres restart, and is well under a lease (30 s). */
export const RETRY_DELAYS_MS = [100, 250, 500, 1_000, 2_000, 3_000] as const;

/** The Postgres error code of a failed query, if any. */
export const pgCode = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "string" ? error.code : undefined;

/**
 * Compares `clock` with the database server's clock (`clock_timestamp()`,
 * the time of the statement, not of its transaction), `samples` times; the
 * sample with the shortest round trip is the most precise and is returned.
 */
export async function sampleClock(db: Queryable, clock: Clock, samples = 1): Promise<ClockSample> {
  let best: ClockSample | undefined;
  for (let i = 0; i < samples; i++) {
    const before = clock.nowMs();
    const { rows } = await db.query<{ ms: number }>("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms");
    const after = clock.nowMs();
    const sample = { offsetMs: Math.round(rows[0]!.ms - (before + after) / 2), uncertaintyMs: Math.max(0, (after - before) / 2) };
    if (best === undefined || sample.uncertaintyMs < best.uncertaintyMs) best = sample;
  }
  return best!;
}

export const UNIQUE_VIOLATION = "23505";
export const DEADLOCK_DETECTED = "40P01";

/** The schema version this Baton ships: the number of its newest migration file. */
export function latestVersion(): number {
  const files = readdirSync(MIGRATIONS_DIR).filter((name) => /^\d{4}_.+\.sql$/.test(name));
  return files.reduce((max, name) => Math.max(max, Number(name.slice(0, 4))), 0);
}

/**
 * The database's schema version (0 before the first migration), in one
 * statement: also the cheap query a readiness probe makes.
 */
export async function schemaVersion(db: Queryable): Promise<number> {
  try {
    const { rows } = await db.query<{ v: number }>("SELECT COALESCE(MAX(version), 0)::int AS v FROM schema_migrations");
    return rows[0]!.v;
  } catch (error) {
    // 42P01 undefined_table: never migrated.
    if (pgCode(error) === "42P01") return 0;
    throw error;
  }
}

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
 *
 * If that connection is lost (a restart, pg_terminate_backend), the lock
 * goes with it; it is taken again on a new connection as soon as Postgres
 * answers (every 1 to 10 s meanwhile). Only if another process took it in
 * between is `onLost` called: the check is then off until this process
 * restarts.
 */
export async function holdModeLock(url: string, alone: boolean, onLost: (error: Error) => void = () => undefined): Promise<() => Promise<void>> {
  let closed = false;
  let current: pg.Client | undefined;
  let wake: (() => void) | undefined;

  const take = async (): Promise<pg.Client> => {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, keepAlive: true });
    // Without a listener, the connection's death would crash the process.
    client.on("error", () => lost(client));
    try {
      await client.connect();
      const { rows } = await client.query<{ ok: boolean }>(
        alone ? "SELECT pg_try_advisory_lock($1) AS ok" : "SELECT pg_try_advisory_lock_shared($1) AS ok",
        [MODE_LOCK],
      );
      if (!rows[0]?.ok) throw new ModeConflict(alone);
      return client;
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
  };

  const lost = (client: pg.Client) => {
    if (client !== current || closed) return;
    current = undefined;
    void client.end().catch(() => undefined);
    void regain();
  };

  const regain = async () => {
    for (let attempt = 0; !closed; attempt++) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(10_000, 1_000 * 2 ** attempt));
        timer.unref();
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (closed) return;
      try {
        const client = await take();
        if (closed) {
          await client.end().catch(() => undefined);
          return;
        }
        current = client;
        return;
      } catch (error) {
        if (error instanceof ModeConflict) {
          onLost(error);
          return;
        }
        // Postgres still away: try again later.
      }
    }
  };

  current = await take();
  return async () => {
    closed = true;
    wake?.();
    await current?.end().catch(() => undefined);
  };
}

class ModeConflict extends Error {
  constructor(alone: boolean) {
    super(
      alone
        ? "Another Baton process uses this database. Without REDIS_URL, events stay in one process's memory, so only one process may serve it: set REDIS_URL on every process, or stop the others."
        : "A Baton process without REDIS_URL serves this database alone; its events would not reach this one. Set REDIS_URL on it too, or stop it.",
    );
  }
}

/**
 * Whether the pgvector extension is installed in the database, available to
 * install on its server, or absent. Reported at start and by the doctor; the
 * store ranks by its exact scan either way (docs/store.md).
 */
export async function pgvectorStatus(db: Queryable): Promise<PgvectorStatus> {
  const { rows } = await db.query<{ installed: boolean; available: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') AS installed, EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') AS available`,
  );
  return rows[0]?.installed === true ? "installed" : rows[0]?.available === true ? "available" : "absent";
}
