/**
 * The embedded backend: everything in one SQLite file.
 */
import type { Clock } from "../../core/clock.ts";
import { ItemsStore } from "../../core/graph-store.ts";
import type { Backend } from "../../core/ports.ts";
import { SqliteCheckpointer } from "./checkpointer.ts";
import { SqliteCrons } from "./crons.ts";
import { SqliteIdempotencyKeys } from "./idempotency.ts";
import { latestVersion, openDatabase, schemaVersion } from "./database.ts";
import { SqliteAssistants, SqliteStoreItems, SqliteThreads } from "./records.ts";
import { SqliteRunQueue } from "./runs.ts";

export interface SqliteBackendOptions {
  /** Database file, or ":memory:". */
  path: string;
  busyTimeoutMs: number;
  clock: Clock;
  /** The process's write lock (`WriteLock.buffer()`), when several threads open the file. */
  writeLock?: SharedArrayBuffer;
}

export interface SqliteBackend extends Backend {
  runs: SqliteRunQueue;
}

export { WriteLock } from "./write-lock.ts";
export { fileSchemaVersion, latestVersion } from "./database.ts";

export function createSqliteBackend(options: SqliteBackendOptions): SqliteBackend {
  const db = openDatabase({ path: options.path, busyTimeoutMs: options.busyTimeoutMs, writeLock: options.writeLock });
  const items = new SqliteStoreItems(db, options.clock);
  return {
    name: "sqlite",
    description: options.path === ":memory:" ? "SQLite (in memory)" : `SQLite ${options.path}`,
    assistants: new SqliteAssistants(db, options.clock),
    threads: new SqliteThreads(db, options.clock),
    runs: new SqliteRunQueue(db, options.clock),
    items,
    idempotency: new SqliteIdempotencyKeys(db),
    crons: new SqliteCrons(db, options.clock),
    checkpointer: new SqliteCheckpointer(db),
    store: new ItemsStore(items),
    async schemaStatus() {
      return { version: schemaVersion(db), expected: latestVersion() };
    },
    async close() {
      items.close();
      if (db.open) db.close();
    },
  };
}
