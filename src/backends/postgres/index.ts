/**
 * The scale-out backend: Postgres is the source of truth and the queue,
 * shared by every API and worker process.
 */
import type { Clock } from "../../core/clock.ts";
import { beyondLimit, clockSkewLimitMs, describeSkew } from "../../core/clock.ts";
import type { Logger } from "../../core/logger.ts";
import { ItemsStore } from "../../core/graph-store.ts";
import type { Backend } from "../../core/ports.ts";
import { PostgresCheckpointer } from "./checkpointer.ts";
import { PostgresCrons } from "./crons.ts";
import { PostgresIdempotencyKeys } from "./idempotency.ts";
import { latestVersion, migrate, openPool, schemaVersion } from "./database.ts";
import { PostgresAssistants, PostgresStoreItems, PostgresThreads } from "./records.ts";
import { PostgresRunQueue } from "./runs.ts";

export { holdModeLock, latestVersion, migrate, openPool, pgvectorStatus, schemaVersion } from "./database.ts";

export interface PostgresBackendOptions {
  /** A postgres:// connection string. */
  url: string;
  /** Connections this process opens at most. */
  poolSize: number;
  clock: Clock;
  /** Apply pending migrations first (several processes may do so at once). */
  migrate: boolean;
  onPoolError?: (error: Error) => void;
}

/** The URL without its password, for logs. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = "";
    return `Postgres ${parsed.host}${parsed.pathname}`;
  } catch {
    return "Postgres";
  }
}

export async function createPostgresBackend(options: PostgresBackendOptions): Promise<Backend> {
  const pool = openPool({ url: options.url, max: options.poolSize, ...(options.onPoolError ? { onError: options.onPoolError } : {}) });
  try {
    if (options.migrate) await migrate(pool);
    else if ((await schemaVersion(pool)) === 0) {
      // A database never migrated: nothing would work (an older schema starts, unready, until migrated).
      throw new Error("The database has no Baton schema yet: run `baton migrate` against it first (or start with BATON_MIGRATE=true).");
    }
  } catch (error) {
    await pool.end();
    throw error;
  }
  const items = new PostgresStoreItems(pool, options.clock);
  return {
    name: "postgres",
    description: describeUrl(options.url),
    assistants: new PostgresAssistants(pool, options.clock),
    threads: new PostgresThreads(pool, options.clock),
    runs: new PostgresRunQueue(pool, options.clock, options.url),
    items,
    idempotency: new PostgresIdempotencyKeys(pool),
    crons: new PostgresCrons(pool, options.clock),
    checkpointer: new PostgresCheckpointer(pool),
    store: new ItemsStore(items),
    poolStats: () => ({ max: options.poolSize, total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async schemaStatus() {
      return { version: await schemaVersion(pool), expected: latestVersion() };
    },
    async close() {
      await pool.end();
    },
  };
}

/** Round trips measured at start; the shortest one's sample is judged. */
const START_SAMPLES = 3;

/**
 * Leases are written by one process and judged by another, each with its
 * own clock, so the clocks must agree. A scale-out process compares its
 * clock (the one its backend was given) with the database server's before
 * it serves: beyond `clockSkewLimitMs(leaseMs)` (a quarter of the lease;
 * beyond what the round trip explains), it refuses to start with an error
 * naming the offset and the limit. After that, every sweep compares them
 * again and a process whose clock has drifted past the limit stops claiming
 * and sweeping until it is back (PostgresRunQueue.guardClock). Nothing to do
 * for another backend: embedded mode is one process with one clock.
 */
export async function guardClock(backend: Backend, leaseMs: number, logger: Logger): Promise<void> {
  if (!(backend.runs instanceof PostgresRunQueue)) return;
  const limitMs = clockSkewLimitMs(leaseMs);
  const sample = await backend.runs.sampleClock(START_SAMPLES);
  if (beyondLimit(sample, limitMs)) {
    throw new Error(
      `This process's clock is ${describeSkew(sample, "the database server's")}; Baton allows at most ${limitMs} ms ` +
        `(a quarter of BATON_LEASE_MS, ${leaseMs} ms), or other processes would judge its leases expired too early or too late. ` +
        "Synchronize the clocks of every Baton host and of the database host (NTP), then start again.",
    );
  }
  logger.debug("clock:checked", { offset_ms: sample.offsetMs, uncertainty_ms: sample.uncertaintyMs, limit_ms: limitMs });
  backend.runs.guardClock(limitMs, logger);
}
