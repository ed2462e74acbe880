/**
 * What only SQLite can show: the schema's own backstops. The queue's
 * behaviour is covered by the shared suite (test/conformance/sqlite.test.ts).
 */
import { describe, expect, it } from "vitest";
import { ManualClock, newRun } from "../../testing/index.ts";
import { openDatabase } from "./database.ts";
import { SqliteRunQueue } from "./runs.ts";

describe("SQLite runs schema", () => {
  it("the partial unique index refuses a second running run even if code tried", async () => {
    const db = openDatabase({ path: ":memory:", busyTimeoutMs: 0 });
    const queue = new SqliteRunQueue(db, new ManualClock());
    await queue.create(newRun("t1", "r1"));
    await queue.create(newRun("t1", "r2"));
    await queue.claim("w1", 30_000);
    expect(() => db.prepare("UPDATE runs SET status = 'running' WHERE run_id = 'r2'").run()).toThrow(/UNIQUE constraint failed/);
    db.close();
  });

  it("a swept rollback erases the run with its checkpoints and their pending writes", async () => {
    const clock = new ManualClock();
    const db = openDatabase({ path: ":memory:", busyTimeoutMs: 0 });
    const queue = new SqliteRunQueue(db, clock);
    await queue.create(newRun("t1", "r1"));
    await queue.claim("w1", 100);
    db.prepare("INSERT INTO checkpoints (thread_id, checkpoint_id, run_id, type, checkpoint, metadata) VALUES ('t1', 'c1', 'r1', 'json', x'00', x'00')").run();
    db.prepare("INSERT INTO checkpoint_writes (thread_id, checkpoint_id, task_id, idx, channel, type, value) VALUES ('t1', 'c1', 'k', 0, 'x', 'json', x'00')").run();
    await queue.cancel(["r1"], "rollback");
    clock.advance(1_000);
    const swept = await queue.sweep(3);
    expect(swept.requeued).toEqual([]);
    expect(swept.failed.map((run) => [run.run_id, run.status])).toEqual([["r1", "rolled_back"]]);
    const count = (table: string) => (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    expect([count("runs"), count("checkpoints"), count("checkpoint_writes")]).toEqual([0, 0, 0]);
    db.close();
  });
});
