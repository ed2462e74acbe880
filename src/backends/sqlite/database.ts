/**
 * Opens the embedded database: one better-sqlite3 connection in WAL mode
 * with a busy timeout (and the process's write lock, when several threads
 * open the file), Baton's SQL functions registered, migrated to the latest
 * schema version.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import Database from "better-sqlite3";
import { registerFunctions } from "./rows.ts";
import { WriteLock } from "./write-lock.ts";

const MIGRATIONS_DIR = new URL("./migrations/", import.meta.url);

export interface OpenOptions {
  /** A file path, or ":memory:". */
  path: string;
  /** How long a statement waits for a lock held by another connection. */
  busyTimeoutMs: number;
  /** Shared by every connection of this process to the file (see write-lock.ts). */
  writeLock?: SharedArrayBuffer;
}

export function openDatabase(options: OpenOptions): Database.Database {
  const db = new Database(options.path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs))}`);
  if (options.writeLock !== undefined) new WriteLock(options.writeLock).guard(db);
  registerFunctions(db);
  migrate(db);
  cacheStatements(db, 500);
  return db;
}

/**
 * Makes `db.prepare` return one cached statement per SQL text. Preparing is
 * a measurable share of a run's CPU (about 3 % in a profile of 640 runs),
 * and the backend's statements are a small, fixed set of shapes; the cache
 * is cleared if dynamic queries ever grow it past `max`. Statements are only
 * used with get/all/run (never iterated), so sharing one is safe.
 */
function cacheStatements(db: Database.Database, max: number): void {
  const prepare = db.prepare.bind(db);
  const cache = new Map<string, Database.Statement>();
  db.prepare = ((sql: string) => {
    let statement = cache.get(sql);
    if (statement === undefined) {
      if (cache.size >= max) cache.clear();
      statement = prepare(sql);
      cache.set(sql, statement);
    }
    return statement;
  }) as typeof db.prepare;
}

/** The schema version this Baton ships: the number of its newest migration file. */
export function latestVersion(): number {
  const files = readdirSync(MIGRATIONS_DIR).filter((name) => /^\d{4}_.+\.sql$/.test(name));
  return files.reduce((max, name) => Math.max(max, Number(name.slice(0, 4))), 0);
}

/** The schema version of an open database (0 before the first migration): one cheap read, so also a liveness query. */
export function schemaVersion(db: Database.Database): number {
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  if (table === undefined) return 0;
  return (db.prepare("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").get() as { v: number }).v;
}

/**
 * The schema version of the database file at `path`, read without changing
 * it; null when there is no such file yet. The driver's native part is
 * loaded either way (an in-memory database), so a build for another Node
 * line fails here as it would at start.
 */
export function fileSchemaVersion(path: string): number | null {
  if (!existsSync(path)) {
    new Database(":memory:").close();
    return null;
  }
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return schemaVersion(db);
  } finally {
    db.close();
  }
}

/** Applies every migration file newer than the database's version, each in its own transaction. */
export function migrate(db: Database.Database): number {
  db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)");
  const current = (db.prepare("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").get() as { v: number }).v;
  const files = readdirSync(MIGRATIONS_DIR)
    .filter((name) => /^\d{4}_.+\.sql$/.test(name))
    .sort();
  const latest = files.length === 0 ? 0 : Number(files.at(-1)!.slice(0, 4));
  if (current > latest) {
    throw new Error(
      `The database is at schema version ${current}, newer than this Baton knows (${latest}). Upgrade Baton or point it at another data directory.`,
    );
  }
  for (const name of files) {
    const version = Number(name.slice(0, 4));
    if (version <= current) continue;
    const sql = readFileSync(new URL(name, MIGRATIONS_DIR), "utf8");
    db.transaction(() => {
      db.exec(sql);
      db.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)").run(version, new Date().toISOString());
    }).immediate();
  }
  return latest;
}
