/**
 * Checkpoint `list` on a long thread reads what it returns and no more: the
 * metadata filter, `before` and the limit are applied by the database, and
 * the pending writes of a page come in one statement. Each backend's saver
 * runs over a driver that counts the statements it runs and the rows they
 * return.
 */
import type { Database } from "better-sqlite3";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BaseCheckpointSaver, Checkpoint, CheckpointTuple } from "@langchain/langgraph-checkpoint";
import { openPool } from "../../src/backends/postgres/database.ts";
import { migrate } from "../../src/backends/postgres/index.ts";
import { PostgresCheckpointer } from "../../src/backends/postgres/checkpointer.ts";
import { openDatabase } from "../../src/backends/sqlite/database.ts";
import { SqliteCheckpointer } from "../../src/backends/sqlite/checkpointer.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";

/** Statements run and rows they returned, counted by the wrapped driver. */
interface Reads {
  statements: number;
  rows: number;
  /** Rows per statement, in order. */
  perStatement: number[];
}

const fresh = (): Reads => ({ statements: 0, rows: 0, perStatement: [] });

function record(reads: Reads, rows: number): void {
  reads.statements += 1;
  reads.rows += rows;
  reads.perStatement.push(rows);
}

/** The SQLite connection, counting what its statements return. */
function countingSqlite(db: Database, reads: { current: Reads }): Database {
  return new Proxy(db, {
    get(target, property) {
      if (property === "prepare") {
        return (sql: string) => {
          const statement = target.prepare(sql);
          return new Proxy(statement, {
            get(inner, name) {
              if (name === "all") {return (...args: unknown[]) => {
                const rows = inner.all(...args);
                record(reads.current, rows.length);
                return rows;
              };}
              if (name === "get") {return (...args: unknown[]) => {
                const row = inner.get(...args);
                record(reads.current, row === undefined ? 0 : 1);
                return row;
              };}
              const value: unknown = Reflect.get(inner, name);
              return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(inner) : value;
            },
          });
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** The Postgres pool, counting the rows its reads return. */
function countingPool(pool: pg.Pool, reads: { current: Reads }): pg.Pool {
  return new Proxy(pool, {
    get(target, property) {
      if (property === "query") {
        return async (...args: unknown[]) => {
          const result = (await (target.query as (...a: unknown[]) => Promise<pg.QueryResult>)(...args));
          if (result.command === "SELECT") record(reads.current, result.rows.length);
          return result;
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const LONG = 2_000;
const idOf = (i: number) => `00000000-0000-6000-8000-${String(i).padStart(12, "0")}`;

const checkpoint = (id: string, step: number): Checkpoint => ({
  v: 4,
  id,
  ts: new Date(0).toISOString(),
  channel_values: { step },
  channel_versions: {},
  versions_seen: {},
});

async function collect(saver: BaseCheckpointSaver, ...args: Parameters<BaseCheckpointSaver["list"]>): Promise<CheckpointTuple[]> {
  const tuples: CheckpointTuple[] = [];
  for await (const tuple of saver.list(...args)) tuples.push(tuple);
  return tuples;
}

interface Subject {
  saver: BaseCheckpointSaver;
  reads: { current: Reads };
}

/** A thread of LONG checkpoints (step i, "input" every tenth, else "loop"), each with one pending write; and a short other thread. */
async function fill(saver: BaseCheckpointSaver): Promise<void> {
  const put = async (thread: string, i: number) => {
    const config = await saver.put(
      { configurable: { thread_id: thread, checkpoint_ns: "", ...(i > 0 ? { checkpoint_id: idOf(i - 1) } : {}) } },
      checkpoint(idOf(i), i),
      { source: i % 10 === 0 ? "input" : "loop", step: i, parents: {} },
      {},
    );
    await saver.putWrites(config, [["channel", `write ${i}`]], `task-${i}`);
  };
  for (let start = 0; start < LONG; start += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, k) => put("long", start + k)));
  }
  for (let i = 0; i < 20; i += 1) await put("other", i);
}

function cases(name: string, setup: () => Promise<Subject>) {
  describe(`${name}: list reads only what it returns`, () => {
    let subject: Subject;
    beforeAll(async () => {
      subject = await setup();
      await fill(subject.saver);
    }, 120_000);

    const measured = async (...args: Parameters<BaseCheckpointSaver["list"]>) => {
      subject.reads.current = fresh();
      const tuples = await collect(subject.saver, ...args);
      return { tuples, reads: subject.reads.current };
    };
    const thread = { configurable: { thread_id: "long", checkpoint_ns: "" } };

    it("a limit of 5 reads 5 checkpoints and their writes, in two statements", async () => {
      const { tuples, reads } = await measured(thread, { limit: 5 });
      expect(tuples.map((t) => t.checkpoint.id)).toEqual([1999, 1998, 1997, 1996, 1995].map(idOf));
      expect(tuples.map((t) => t.pendingWrites)).toEqual([1999, 1998, 1997, 1996, 1995].map((i) => [[`task-${i}`, "channel", `write ${i}`]]));
      expect(tuples[0]!.parentConfig?.configurable?.checkpoint_id).toBe(idOf(1998));
      expect(reads).toEqual({ statements: 2, rows: 10, perStatement: [5, 5] });
    });

    it("a metadata filter is applied before the limit, by the database", async () => {
      const { tuples, reads } = await measured(thread, { limit: 3, filter: { source: "input" } });
      expect(tuples.map((t) => t.metadata?.step)).toEqual([1990, 1980, 1970]);
      expect(reads).toEqual({ statements: 2, rows: 6, perStatement: [3, 3] });

      const one = await measured(thread, { limit: 5, filter: { step: 7, source: "loop" } });
      expect(one.tuples.map((t) => t.checkpoint.id)).toEqual([idOf(7)]);
      expect(one.reads).toEqual({ statements: 2, rows: 2, perStatement: [1, 1] });

      // Containment as everywhere else: a number is not its string, and nothing matches reads nothing more.
      const none = await measured(thread, { limit: 5, filter: { step: "7" } });
      expect(none.tuples).toEqual([]);
      expect(none.reads).toEqual({ statements: 1, rows: 0, perStatement: [0] });
    });

    it("before and the limit together read the page they return", async () => {
      const { tuples, reads } = await measured(thread, { limit: 2, before: { configurable: { checkpoint_id: idOf(1000) } } });
      expect(tuples.map((t) => t.checkpoint.id)).toEqual([idOf(999), idOf(998)]);
      expect(reads).toEqual({ statements: 2, rows: 4, perStatement: [2, 2] });
    });

    it("without a limit, the whole thread comes newest first, a page at a time", async () => {
      const { tuples, reads } = await measured(thread);
      expect(tuples.map((t) => t.checkpoint.id)).toEqual(Array.from({ length: LONG }, (_, i) => idOf(LONG - 1 - i)));
      expect(tuples.every((t, i) => t.pendingWrites?.[0]?.[2] === `write ${LONG - 1 - i}`)).toBe(true);
      // No statement reads the thread whole.
      expect(Math.max(...reads.perStatement)).toBeLessThan(LONG / 10);
      expect(reads.rows).toBe(2 * LONG);
    });

    it("a listing across threads and namespaces pages exactly where ids repeat", async () => {
      // The same ids in three threads and two namespaces each: pages of 100 end inside runs of six equal ids.
      for (const thread_id of ["tie-a", "tie-b", "tie-c"]) {
        for (const checkpoint_ns of ["", "child"]) {
          for (let i = 0; i < 130; i += 1) {
            await subject.saver.put({ configurable: { thread_id, checkpoint_ns } }, checkpoint(`tie-${String(i).padStart(4, "0")}`, i), { step: i, tie: true } as never, {});
          }
        }
      }
      const { tuples } = await measured({ configurable: {} }, { filter: { tie: true } });
      const keys = tuples.map((t) => `${t.checkpoint.id} ${t.config.configurable?.thread_id} ${t.config.configurable?.checkpoint_ns}`);
      expect(keys.length).toBe(6 * 130);
      expect(new Set(keys).size).toBe(6 * 130);
      const ids = tuples.map((t) => t.checkpoint.id);
      expect(ids).toEqual([...ids].sort().reverse());

      const limited = await measured({ configurable: { thread_id: "tie-a" } }, { limit: 3, filter: { tie: true } });
      expect(limited.tuples.map((t) => t.checkpoint.id)).toEqual(["tie-0129", "tie-0129", "tie-0128"]);
      expect(limited.reads.perStatement[0]).toBe(3);
    });
  });
}

cases("sqlite", async () => {
  const reads = { current: fresh() };
  const db = openDatabase({ path: ":memory:", busyTimeoutMs: 0 });
  return { saver: new SqliteCheckpointer(countingSqlite(db, reads)), reads };
});

let database: TestDatabase | undefined;
let pool: pg.Pool | undefined;
cases("postgres", async () => {
  database = await freshDatabase("checkpointer_list");
  pool = openPool({ url: database.url, max: 4 });
  await migrate(pool);
  const reads = { current: fresh() };
  return { saver: new PostgresCheckpointer(countingPool(pool, reads)), reads };
});
afterAll(async () => {
  await pool?.end();
  await database?.drop();
});
