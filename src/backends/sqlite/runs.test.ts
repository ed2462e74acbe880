/** The queue's own guarantees on SQLite in memory: C1 by the claim and by the index, FIFO, fencing. */
import { describe, expect, it } from "vitest";
import type { Clock } from "../../core/clock.ts";
import type { NewRun, RunOutcome } from "../../core/ports.ts";
import { openDatabase } from "./database.ts";
import { createSqliteBackend } from "./index.ts";
import { SqliteRunQueue } from "./runs.ts";

const clock: Clock = { nowMs: () => 1_700_000_000_000 };
const backend = () => createSqliteBackend({ path: ":memory:", busyTimeoutMs: 0, clock });
const newRun = (threadId: string, runId: string): NewRun => ({
  run_id: runId,
  thread_id: threadId,
  assistant_id: "a",
  graph_id: "g",
  metadata: {},
  multitask_strategy: "enqueue",
  available_at_ms: 0,
  if_not_exists: "create",
  kwargs: {} as NewRun["kwargs"],
});
const done: RunOutcome = { status: "success", error: null, erase: false, output: {}, thread: { values: {}, interrupts: {}, status: "idle" } };

describe("SqliteRunQueue", () => {
  it("never claims a second run of a thread while one runs, and keeps FIFO order", async () => {
    const b = backend();
    await b.runs.create(newRun("t1", "r1"));
    await b.runs.create(newRun("t1", "r2"));
    await b.runs.create(newRun("t2", "r3"));
    const first = await b.runs.claim("w1", 30_000);
    const second = await b.runs.claim("w2", 30_000);
    expect([first?.run_id, second?.run_id]).toEqual(["r1", "r3"]);
    expect(await b.runs.claim("w3", 30_000)).toBeNull();
    expect(await b.runs.finish("r1", { owner: "w1", attempt: 1 }, done)).toBe(true);
    expect((await b.runs.claim("w3", 30_000))?.run_id).toBe("r2");
    await b.close();
  });

  it("the partial unique index refuses a second running run even if code tried", async () => {
    const db = openDatabase({ path: ":memory:", busyTimeoutMs: 0 });
    const queue = new SqliteRunQueue(db, clock);
    await queue.create(newRun("t1", "r1"));
    await queue.create(newRun("t1", "r2"));
    await queue.claim("w1", 30_000);
    expect(() => db.prepare("UPDATE runs SET status = 'running' WHERE run_id = 'r2'").run()).toThrow(/UNIQUE constraint failed/);
    db.close();
  });

  it("fences outcomes by owner and attempt, and the sweeper requeues expired leases", async () => {
    let now = 1_000;
    const b = createSqliteBackend({ path: ":memory:", busyTimeoutMs: 0, clock: { nowMs: () => now } });
    await b.runs.create(newRun("t1", "r1"));
    await b.runs.claim("w1", 100);
    now += 1_000;
    expect(await b.runs.sweep(3)).toEqual({ requeued: ["r1"], failed: [] });
    const again = await b.runs.claim("w2", 100);
    expect(again?.attempt).toBe(2);
    expect(await b.runs.finish("r1", { owner: "w1", attempt: 1 }, done)).toBe(false);
    expect(await b.runs.finish("r1", { owner: "w2", attempt: 2 }, done)).toBe(true);
    await b.close();
  });

  it("a swept rollback erases the run with its checkpoints and their pending writes", async () => {
    let now = 1_000;
    const db = openDatabase({ path: ":memory:", busyTimeoutMs: 0 });
    const queue = new SqliteRunQueue(db, { nowMs: () => now });
    await queue.create(newRun("t1", "r1"));
    await queue.claim("w1", 100);
    db.prepare("INSERT INTO checkpoints (thread_id, checkpoint_id, run_id, type, checkpoint, metadata) VALUES ('t1', 'c1', 'r1', 'json', x'00', x'00')").run();
    db.prepare("INSERT INTO checkpoint_writes (thread_id, checkpoint_id, task_id, idx, channel, type, value) VALUES ('t1', 'c1', 'k', 0, 'x', 'json', x'00')").run();
    await queue.cancel(["r1"], "rollback");
    now += 1_000;
    expect(await queue.sweep(3)).toEqual({ requeued: [], failed: ["r1"] });
    const count = (table: string) => (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    expect([count("runs"), count("checkpoints"), count("checkpoint_writes")]).toEqual([0, 0, 0]);
    db.close();
  });
});
