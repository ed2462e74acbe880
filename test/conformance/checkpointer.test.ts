/**
 * LangGraph's own checkpointer validation suite
 * (@langchain/langgraph-checkpoint-validation), run against Baton's saver on
 * each backend: what LangGraph requires of any checkpointer.
 */
import type pg from "pg";
import * as vitest from "vitest";
import { openPool } from "../../src/backends/postgres/database.ts";
import { migrate } from "../../src/backends/postgres/index.ts";
import { PostgresCheckpointer } from "../../src/backends/postgres/checkpointer.ts";
import { openDatabase } from "../../src/backends/sqlite/database.ts";
import { SqliteCheckpointer } from "../../src/backends/sqlite/checkpointer.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";

/**
 * Cases Baton's saver does not meet, each with the reason (they run as
 * skipped, named with it):
 * - channel deltas: the official Postgres saver stores each channel value
 *   once per version in a blobs table, and a checkpoint only the channels
 *   that changed; ours stores a checkpoint whole (so does LangGraph's own
 *   SQLite saver, which this suite skips for the same reason). Correct
 *   either way; deltas save space for graphs with many rarely changing
 *   channels.
 * - pending sends migration: rewrites checkpoints of format v < 4, written
 *   by LangGraph releases older than any Baton has run with.
 */
const NOT_MET: Record<string, string> = {
  "should only store channel_values that have changed (based on newVersions)": "Baton stores whole checkpoints, not channel deltas",
  "should migrate pending sends": "no checkpoint of format v < 4 is ever written by the LangGraph versions Baton runs",
};

const it = new Proxy(vitest.it, {
  apply(target, self, args: Parameters<typeof vitest.it>) {
    const [name, fn] = args;
    if (typeof name === "string" && name in NOT_MET) return vitest.it.skip(`[skipped: ${NOT_MET[name]}] ${name}`, fn as () => unknown);
    return Reflect.apply(target, self, args) as unknown;
  },
});

// The suite is written for Jest-style globals; hand it Vitest's before loading it.
Object.assign(globalThis, {
  describe: vitest.describe,
  it,
  test: vitest.test,
  expect: vitest.expect,
  beforeAll: vitest.beforeAll,
  afterAll: vitest.afterAll,
  beforeEach: vitest.beforeEach,
  afterEach: vitest.afterEach,
});
const { validate } = await import("@langchain/langgraph-checkpoint-validation");

validate<SqliteCheckpointer>({
  checkpointerName: "baton sqlite",
  // A fresh in-memory database per checkpointer: nothing shared between them.
  createCheckpointer: () => new SqliteCheckpointer(openDatabase({ path: ":memory:", busyTimeoutMs: 0 })),
});

let database: TestDatabase;
let pool: pg.Pool;
validate<PostgresCheckpointer>({
  checkpointerName: "baton postgres",
  beforeAllTimeout: 30_000,
  async beforeAll() {
    database = await freshDatabase("checkpointer");
    pool = openPool({ url: database.url, max: 4 });
    await migrate(pool);
  },
  async afterAll() {
    await pool.end();
    await database.drop();
  },
  // One database; each checkpointer starts from empty tables.
  async createCheckpointer() {
    await pool.query("TRUNCATE checkpoints, checkpoint_writes");
    return new PostgresCheckpointer(pool);
  },
});
