/**
 * The scale-out backend: Postgres is the source of truth and the queue,
 * shared by every API and worker process.
 */
import type { Clock } from "../../core/clock.ts";
import { ItemsStore } from "../../core/graph-store.ts";
import type { Backend } from "../../core/ports.ts";
import { PostgresCheckpointer } from "./checkpointer.ts";
import { migrate, openPool } from "./database.ts";
import { PostgresAssistants, PostgresStoreItems, PostgresThreads } from "./records.ts";
import { PostgresRunQueue } from "./runs.ts";

export { holdModeLock, migrate, openPool } from "./database.ts";

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
    else await pool.query("SELECT 1");
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
    checkpointer: new PostgresCheckpointer(pool),
    store: new ItemsStore(items),
    async close() {
      await pool.end();
    },
  };
}
