/**
 * One writer at a time among the SQLite connections of this process (the
 * HTTP thread's and each execution thread's), taken in memory before
 * SQLite's own file lock.
 *
 * Why: a connection that finds the file locked waits in SQLite's busy
 * handler, which sleeps 1, 2, 5, 10 ms and more between tries, while our
 * write transactions hold the lock for a fraction of a millisecond. Under
 * load the threads spent a fifth of their time asleep there. This lock is a
 * futex on shared memory: a waiter is woken the moment the holder lets go.
 * SQLite's busy timeout stays as the guard against other processes.
 *
 * Reentrant within a thread: statements inside a transaction that holds it
 * do not take it again (one WriteLock object per buffer in each thread).
 * The lock names its holder (thread id + 1), so the process can free it
 * when a thread ends in the middle of a write (`releaseHeldBy`).
 */
import { threadId } from "node:worker_threads";
import type { Database, Statement } from "better-sqlite3";

const FREE = 0;
/** A waiter re-checks at least this often, whatever happens to wake-ups. */
const WAIT_SLICE_MS = 50;

export class WriteLock {
  readonly #state: Int32Array;
  /** What the lock holds while this thread has it: its thread id + 1 (the main thread's id is 0). */
  readonly #me = threadId + 1;
  #depth = 0;

  /** Every thread passes the same buffer (4 bytes); `WriteLock.buffer()` makes one. */
  constructor(buffer: SharedArrayBuffer) {
    this.#state = new Int32Array(buffer);
  }

  static buffer(): SharedArrayBuffer {
    return new SharedArrayBuffer(4);
  }

  /**
   * Frees the lock if the thread `deadThreadId` (a `Worker`'s `threadId`)
   * held it when it ended. A terminated thread runs no `finally`; without
   * this, every later write of the process would wait forever.
   */
  static releaseHeldBy(buffer: SharedArrayBuffer, deadThreadId: number): void {
    const state = new Int32Array(buffer);
    if (Atomics.compareExchange(state, 0, deadThreadId + 1, FREE) === deadThreadId + 1) Atomics.notify(state, 0, 1);
  }

  /** Runs `work` (synchronous) holding the lock. */
  hold<T>(work: () => T): T {
    if (this.#depth > 0) return work();
    for (;;) {
      const holder = Atomics.compareExchange(this.#state, 0, FREE, this.#me);
      if (holder === FREE) break;
      Atomics.wait(this.#state, 0, holder, WAIT_SLICE_MS);
    }
    this.#depth = 1;
    try {
      return work();
    } finally {
      this.#depth = 0;
      Atomics.store(this.#state, 0, FREE);
      Atomics.notify(this.#state, 0, 1);
    }
  }

  /**
   * Makes every write on `db` hold the lock: statements that write (an
   * autocommit write, or one inside a transaction, which already holds it)
   * and every transaction function, whichever way it is called.
   */
  guard(db: Database): void {
    const prepare = db.prepare.bind(db);
    db.prepare = ((sql: string) => {
      const statement = prepare(sql);
      if (!statement.readonly) this.#guardStatement(statement);
      return statement;
    }) as typeof db.prepare;
    const transaction = db.transaction.bind(db);
    db.transaction = ((fn: (...args: unknown[]) => unknown) => {
      const tx = transaction(fn);
      const guarded = Object.assign((...args: unknown[]) => this.hold(() => tx(...args)), tx);
      for (const kind of ["deferred", "immediate", "exclusive"] as const) {
        const run = tx[kind].bind(tx);
        guarded[kind] = (...args: unknown[]) => this.hold(() => run(...args));
      }
      return guarded;
    }) as typeof db.transaction;
    const exec = db.exec.bind(db);
    db.exec = (sql: string) => this.hold(() => exec(sql));
  }

  #guardStatement(statement: Statement): void {
    const run = statement.run.bind(statement);
    const get = statement.get.bind(statement);
    const all = statement.all.bind(statement);
    statement.run = (...args: unknown[]) => this.hold(() => run(...args));
    statement.get = (...args: unknown[]) => this.hold(() => get(...args));
    statement.all = (...args: unknown[]) => this.hold(() => all(...args));
  }
}
