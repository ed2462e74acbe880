/**
 * The run queue's contract, as a suite every backend must pass: one running
 * run per thread (C1), FIFO within a thread, double texting decided at insert
 * (C2), fencing by owner and attempt, lease expiry and requeue (C3), cancels,
 * per-user caps, fairness across users, priorities and the queue deadline (C6).
 *
 * Use: `describeRunQueue({ name, create })` from a test file; `create` gets a
 * clock the suite controls and returns a fresh, empty backend.
 */
import { describe, expect, it } from "vitest";
import type { Clock } from "../core/clock.ts";
import { BatonError } from "../core/errors.ts";
import type { Backend } from "../core/ports.ts";
import { ManualClock, newRun, succeeded } from "./fixtures.ts";

export interface QueueSuiteInit {
  name: string;
  create(clock: Clock): Promise<Backend> | Backend;
}

export function describeRunQueue(init: QueueSuiteInit): void {
  const setup = async () => {
    const clock = new ManualClock();
    const backend = await init.create(clock);
    return { clock, backend, queue: backend.runs };
  };

  describe(`RunQueue conformance: ${init.name}`, () => {
    it("claims at most one run per thread, FIFO within a thread, others in parallel (C1)", async () => {
      const { backend, queue } = await setup();
      await queue.create(newRun("t1", "r1"));
      await queue.create(newRun("t1", "r2"));
      await queue.create(newRun("t2", "r3"));
      expect((await queue.claim("w1", 30_000))?.run_id).toBe("r1");
      expect((await queue.claim("w2", 30_000))?.run_id).toBe("r3");
      expect(await queue.claim("w3", 30_000)).toBeNull();
      expect(await queue.finish("r1", { owner: "w1", attempt: 1 }, succeeded)).toBe("recorded");
      expect((await queue.claim("w3", 30_000))?.run_id).toBe("r2");
      await backend.close();
    });

    it("concurrent claimers never hold two runs of one thread at once, and keep FIFO per thread (C1)", async () => {
      const { backend, queue } = await setup();
      const threads = 5;
      const perThread = 4;
      for (let r = 0; r < perThread; r++) for (let th = 0; th < threads; th++) await queue.create(newRun(`t${th}`, `t${th}-r${r}`));
      const holding = new Map<string, string>();
      const order = new Map<string, string[]>();
      let finished = 0;
      await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          while (finished < threads * perThread) {
            const run = await queue.claim(`w${w}`, 30_000);
            if (run === null) {
              await new Promise(setImmediate);
              continue;
            }
            expect(holding.get(run.thread_id), `two runs of ${run.thread_id} held at once`).toBeUndefined();
            holding.set(run.thread_id, run.run_id);
            order.set(run.thread_id, [...(order.get(run.thread_id) ?? []), run.run_id]);
            await new Promise(setImmediate);
            holding.delete(run.thread_id);
            expect(await queue.finish(run.run_id, { owner: `w${w}`, attempt: 1 }, succeeded)).toBe("recorded");
            finished += 1;
          }
        }),
      );
      for (let th = 0; th < threads; th++) {
        expect(order.get(`t${th}`)).toEqual(Array.from({ length: perThread }, (_, r) => `t${th}-r${r}`));
      }
      await backend.close();
    });

    it("does not claim a delayed run before it is due, nor let later runs of its thread overtake others", async () => {
      const { backend, queue, clock } = await setup();
      await queue.create(newRun("t1", "later", "enqueue", clock.nowMs() + 5_000));
      expect(await queue.claim("w1", 30_000)).toBeNull();
      clock.advance(5_000);
      expect((await queue.claim("w1", 30_000))?.run_id).toBe("later");
      await backend.close();
    });

    it("reject refuses a run on a busy thread, naming the busy run (C2)", async () => {
      const { backend, queue } = await setup();
      await queue.create(newRun("t1", "r1"));
      await queue.claim("w1", 30_000);
      const refused = queue.create(newRun("t1", "r2", "reject"));
      await expect(refused).rejects.toBeInstanceOf(BatonError);
      await expect(refused).rejects.toThrow(/r1/);
      expect(await queue.get("r2")).toBeNull();
      await backend.close();
    });

    it("interrupt ends pending runs at once and flags the running one (C2)", async () => {
      const { backend, queue } = await setup();
      await queue.create(newRun("t1", "r1"));
      await queue.claim("w1", 30_000);
      await queue.create(newRun("t1", "r2"));
      const { cancelled } = await queue.create(newRun("t1", "r3", "interrupt"));
      expect(cancelled).toEqual([
        { run_id: "r1", action: "interrupt", was_running: true, thread_log: "t1", resumable: false },
        { run_id: "r2", action: "interrupt", was_running: false, thread_log: "t1", resumable: false },
      ]);
      expect((await queue.get("r2"))?.status).toBe("interrupted");
      expect(await queue.cancelAction("r1")).toBe("interrupt");
      // The new run waits for the flagged one to stop (C1 still holds).
      expect(await queue.claim("w2", 30_000)).toBeNull();
      expect(await queue.finish("r1", { owner: "w1", attempt: 1 }, { ...succeeded, status: "interrupted" })).toBe("recorded");
      expect((await queue.claim("w2", 30_000))?.run_id).toBe("r3");
      await backend.close();
    });

    it("rollback deletes pending runs at once and erases the running one when it finishes (C2)", async () => {
      const { backend, queue } = await setup();
      await queue.create(newRun("t1", "r1"));
      await queue.claim("w1", 30_000);
      await queue.create(newRun("t1", "r2"));
      await queue.create(newRun("t1", "r3", "rollback"));
      expect(await queue.get("r2")).toBeNull();
      expect(await queue.cancelAction("r1")).toBe("rollback");
      expect(await queue.finish("r1", { owner: "w1", attempt: 1 }, { ...succeeded, status: "interrupted", erase: true })).toBe("erased");
      expect(await queue.get("r1")).toBeNull();
      expect((await queue.inflight("t1")).map((r) => r.run_id)).toEqual(["r3"]);
      await backend.close();
    });

    it("erases a run flagged for rollback even when its graph finished first (C2)", async () => {
      const { backend, queue } = await setup();
      await queue.create(newRun("t1", "r1"));
      await queue.claim("w1", 30_000);
      await queue.create(newRun("t1", "r2", "rollback"));
      // The worker saw no abort in time and reports a success.
      expect(await queue.finish("r1", { owner: "w1", attempt: 1 }, succeeded)).toBe("erased");
      expect(await queue.get("r1")).toBeNull();
      expect((await backend.threads.get("t1"))?.values).toBeNull();
      await backend.close();
    });

    it("sweeps one owner's expired leases only, when asked", async () => {
      const { backend, queue, clock } = await setup();
      await queue.create(newRun("t1", "r1"));
      await queue.create(newRun("t2", "r2"));
      await queue.claim("w1", 1_000);
      await queue.claim("w2", 1_000);
      clock.advance(2_000);
      expect(await queue.sweep(3, "w2")).toEqual({ requeued: ["r2"], failed: [] });
      expect((await queue.get("r1"))?.status).toBe("running");
      expect(await queue.sweep(3)).toEqual({ requeued: ["r1"], failed: [] });
      await backend.close();
    });

    it("fences outcomes by owner and attempt; the sweeper requeues expired leases, then gives up (C3)", async () => {
      const { backend, queue, clock } = await setup();
      await queue.create(newRun("t1", "r1"));
      await queue.claim("w1", 1_000);
      clock.advance(2_000);
      expect(await queue.sweep(2)).toEqual({ requeued: ["r1"], failed: [] });
      const second = await queue.claim("w2", 1_000);
      expect(second?.attempt).toBe(2);
      expect(await queue.finish("r1", { owner: "w1", attempt: 1 }, succeeded)).toBe("fenced");
      expect(await queue.extendLeases("w1", ["r1"], 1_000)).toEqual([]);
      expect(await queue.extendLeases("w2", ["r1"], 1_000)).toEqual(["r1"]);
      clock.advance(2_000);
      // What its end event says, and the thread whose log it goes to.
      expect(await queue.sweep(2)).toEqual({
        requeued: [],
        failed: [{ run_id: "r1", thread_log: "t1", resumable: false, status: "error", output: { __error__: { error: "RunAbandoned", message: expect.stringMatching(/max attempts 2/) } } }],
      });
      const failed = await queue.get("r1");
      expect(failed?.status).toBe("error");
      expect(failed?.error).toMatch(/max attempts 2/);
      expect((await backend.threads.get("t1"))?.status).toBe("error");
      await backend.close();
    });

    it("release hands a run back for another attempt, fenced", async () => {
      const { backend, queue } = await setup();
      await queue.create(newRun("t1", "r1"));
      await queue.claim("w1", 30_000);
      expect(await queue.release("r1", { owner: "other", attempt: 1 })).toBe(false);
      expect(await queue.release("r1", { owner: "w1", attempt: 1 })).toBe(true);
      expect((await queue.claim("w2", 30_000))?.attempt).toBe(2);
      await backend.close();
    });

    it("keeps the thread busy while runs are in flight and records the outcome on it", async () => {
      const { backend, queue } = await setup();
      await queue.create(newRun("t1", "r1"));
      await queue.create(newRun("t1", "r2"));
      expect((await backend.threads.get("t1"))?.status).toBe("busy");
      await queue.claim("w1", 30_000);
      await queue.finish("r1", { owner: "w1", attempt: 1 }, succeeded);
      expect((await backend.threads.get("t1"))?.status).toBe("busy");
      await queue.claim("w1", 30_000);
      await queue.finish("r2", { owner: "w1", attempt: 1 }, { ...succeeded, thread: { values: { n: 2 }, interrupts: {}, status: "idle" } });
      const thread = await backend.threads.get("t1");
      expect(thread?.status).toBe("idle");
      expect(thread?.values).toEqual({ n: 2 });
      expect((await queue.get("r2"))?.output).toEqual({ ok: true });
      await backend.close();
    });

    it("a thread lock is refused while a run is pending or running, and holds runs back until released (C1)", async () => {
      const { backend, queue, clock } = await setup();
      await queue.create(newRun("t1", "r1"));
      await queue.claim("w1", 30_000);
      expect(await queue.lockThread("t1", "u1", 10_000)).toEqual({ locked: false, busyWith: "run r1" });
      await queue.finish("r1", { owner: "w1", attempt: 1 }, succeeded);
      expect(await queue.lockThread("t1", "u1", 10_000)).toEqual({ locked: true });
      expect(await queue.lockThread("t1", "u2", 10_000)).toEqual({ locked: false, busyWith: "another state update" });
      await queue.create(newRun("t1", "r2"));
      expect(await queue.claim("w1", 30_000)).toBeNull();
      await queue.unlockThread("t1", "u1");
      // A pending run holds the thread as a running one does.
      expect(await queue.lockThread("t1", "u5", 10_000)).toEqual({ locked: false, busyWith: "run r2" });
      expect((await queue.claim("w1", 30_000))?.run_id).toBe("r2");
      await queue.finish("r2", { owner: "w1", attempt: 1 }, succeeded);
      // A lock whose holder died expires.
      expect(await queue.lockThread("t1", "u3", 1_000)).toEqual({ locked: true });
      clock.advance(1_001);
      expect(await queue.lockThread("t1", "u4", 1_000)).toEqual({ locked: true });
      await backend.close();
    });

    it("caps running runs per user and prefers users with fewer running runs (C6)", async () => {
      const { backend, queue } = await setup();
      const owned = (thread: string, run: string, owner: string) => ({ ...newRun(thread, run), owner });
      for (let i = 0; i < 4; i++) await queue.create(owned(`a${i}`, `ra${i}`, "alice"));
      await queue.create(owned("b0", "rb0", "bob"));
      await queue.create(newRun("n0", "rn0"));
      const policy = { maxRunningPerUser: 2 };
      const order: string[] = [];
      for (let next = await queue.claim("w", 30_000, policy); next !== null; next = await queue.claim("w", 30_000, policy)) {
        order.push(next.run_id);
      }
      // alice's first, then bob (0 running) and the ownerless run before alice's second; alice stops at 2.
      expect(order).toEqual(["ra0", "rb0", "rn0", "ra1"]);
      expect((await queue.get("ra1"))?.owner).toBe("alice");
      await queue.finish("ra0", { owner: "w", attempt: 1 }, succeeded);
      expect((await queue.claim("w", 30_000, policy))?.run_id).toBe("ra2");
      await backend.close();
    });

    it("concurrent claimers never run more of one user's runs than the cap (C6)", async () => {
      const { backend, queue } = await setup();
      const owned = (thread: string, run: string, owner: string) => ({ ...newRun(thread, run), owner });
      const policy = { maxRunningPerUser: 2 };
      // Each round: 16 runs of one user on 16 threads, 8 claimers at once,
      // each claiming until it finds nothing. Exactly the cap may be running.
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 16; i++) await queue.create(owned(`cap${round}-${i}`, `cap${round}-r${i}`, `user${round}`));
        const claimed = (await Promise.all(
          Array.from({ length: 8 }, async (_, w) => {
            const mine: string[] = [];
            for (let run = await queue.claim(`w${w}`, 30_000, policy); run !== null; run = await queue.claim(`w${w}`, 30_000, policy)) {
              mine.push(run.run_id);
            }
            return mine;
          }),
        )).flat();
        expect(claimed, `round ${round}: claimed ${claimed.join(", ")}`).toHaveLength(2);
      }
      await backend.close();
    });

    it("stores the owner and the thread metadata it is given, whatever the metadata says (RunService decides them)", async () => {
      const { backend, queue } = await setup();
      await backend.threads.create({ thread_id: "t1", metadata: { owner: "carol" }, if_exists: "raise" });
      const { run } = await queue.create({ ...newRun("t1", "r1"), metadata: { owner: "mallory" }, owner: "erin" });
      expect(run.owner).toBe("erin");
      expect((await backend.threads.get("t1"))?.metadata).toMatchObject({ owner: "carol", graph_id: "graph" });
      const created = await queue.create({ ...newRun("t2", "r2"), thread_metadata: { graph_id: "graph", assistant_id: "assistant", topic: "new" } });
      expect(created.run.owner).toBeNull();
      expect((await backend.threads.get("t2"))?.metadata).toEqual({ graph_id: "graph", assistant_id: "assistant", topic: "new" });
      await backend.close();
    });

    it("reports the queue per graph and status, with the oldest due pending run, and users per run count", async () => {
      const { backend, queue, clock } = await setup();
      const now = clock.nowMs();
      await queue.create({ ...newRun("s1", "s1a"), owner: "alice" });
      await queue.create({ ...newRun("s1", "s1b"), owner: "alice" });
      await queue.create({ ...newRun("s2", "s2a", "enqueue", now + 60_000), owner: "bob" });
      await queue.create({ ...newRun("s3", "s3a"), graph_id: "other" });
      expect((await queue.claim("w", 30_000))?.run_id).toBe("s1a");
      const stats = await queue.stats(now);
      const byGraph = Object.fromEntries(stats.graphs.map((g) => [`${g.graph_id}/${g.status}`, g]));
      expect(byGraph["graph/running"]).toMatchObject({ runs: 1 });
      // s1b (due) and s2a (delayed, so not due): two pending, the oldest due one is s1b's.
      expect(byGraph["graph/pending"]).toMatchObject({ runs: 2, oldest_due_ms: expect.any(Number) });
      expect(byGraph["graph/pending"]!.oldest_due_ms).toBeLessThanOrEqual(now);
      expect(byGraph["other/pending"]).toMatchObject({ runs: 1 });
      const users = (status: string) => Object.fromEntries(stats.users.filter((u) => u.status === status).map((u) => [u.runs, u.users]));
      // Pending: alice 1, bob 1, the anonymous user 1. Running: alice 1.
      expect(users("pending")).toEqual({ 1: 3 });
      expect(users("running")).toEqual({ 1: 1 });
      await backend.close();
    });

    it("answers 'try again' when a user's or the whole queue is full (C6)", async () => {
      const { backend, queue } = await setup();
      const limits = { maxPendingPerUser: 2, maxPendingRuns: 4 };
      const owned = (i: number) => ({ ...newRun(`t${i}`, `r${i}`), owner: "dave" });
      await queue.create(owned(1), limits);
      await queue.create(owned(2), limits);
      const refused = queue.create(owned(3), limits);
      await expect(refused).rejects.toMatchObject({ code: "too_many_requests", retryAfterSeconds: 5 });
      await expect(refused).rejects.toThrow(/User 'dave' already has 2 pending runs/);
      await queue.create(newRun("x1", "x1"), limits);
      await queue.create(newRun("x2", "x2"), limits);
      await expect(queue.create(newRun("x3", "x3"), limits)).rejects.toThrow(/queue is full \(4 pending runs\)/);
      expect(await queue.get("r3")).toBeNull();
      await backend.close();
    });

    it("claims higher priority first across threads, never breaking FIFO within a thread", async () => {
      const { backend, queue } = await setup();
      const at = (thread: string, run: string, priority: number) => ({ ...newRun(thread, run), priority });
      await queue.create(at("t1", "low", 0));
      await queue.create(at("t1", "urgent-behind-low", 50));
      await queue.create(at("t2", "mid", 10));
      await queue.create(at("t3", "below", -10));
      await queue.create(at("t4", "low-later", 0));
      const order: string[] = [];
      for (let next = await queue.claim("w", 30_000); next !== null; next = await queue.claim("w", 30_000)) order.push(next.run_id);
      // The priority-50 run is not its thread's oldest: it waits for "low" (C1, FIFO), whatever its priority.
      expect(order).toEqual(["mid", "low", "low-later", "below"]);
      expect((await queue.get("urgent-behind-low"))?.status).toBe("pending");
      await queue.finish("low", { owner: "w", attempt: 1 }, succeeded);
      expect((await queue.claim("w", 30_000))?.run_id).toBe("urgent-behind-low");
      await backend.close();
    });

    it("priority comes before fairness: a user's urgent run goes before another user's ordinary one", async () => {
      const { backend, queue } = await setup();
      const owned = (thread: string, run: string, owner: string | null, priority = 0) => ({ ...newRun(thread, run), owner, priority });
      await queue.create(owned("a0", "alice-0", "alice"));
      expect((await queue.claim("w", 30_000, { maxRunningPerUser: 5 }))?.run_id).toBe("alice-0");
      await queue.create(owned("b0", "bob-0", "bob"));
      await queue.create(owned("a1", "alice-urgent", "alice", 5));
      expect((await queue.claim("w", 30_000, { maxRunningPerUser: 5 }))?.run_id).toBe("alice-urgent");
      expect((await queue.claim("w", 30_000, { maxRunningPerUser: 5 }))?.run_id).toBe("bob-0");
      await backend.close();
    });

    for (const flooder of ["alice", null] as const) {
      it(`a flood of ${flooder ?? "anonymous"} runs, uncapped, delays another user's run by one claim at most (C6)`, async () => {
        const { backend, queue } = await setup();
        const owned = (thread: string, run: string, owner: string | null) => ({ ...newRun(thread, run), owner });
        // More than one claim's worth of candidates (the claim once looked at the first 32 in FIFO order only), and
        // more than the first 256 named runs the Postgres claim looks at before searching every user.
        for (let i = 0; i < 300; i++) await queue.create(owned(`flood-${i}`, `flood-${i}`, flooder));
        await queue.create(owned("bob", "bob-0", "bob"));
        const policy = { maxRunningPerUser: 1_000 };
        expect((await queue.claim("w", 30_000, policy))?.run_id).toBe("flood-0");
        // The flooder has a run running, bob none: bob's run is next, then the flood resumes in order.
        expect((await queue.claim("w", 30_000, policy))?.run_id).toBe("bob-0");
        expect((await queue.claim("w", 30_000, policy))?.run_id).toBe("flood-1");
        await backend.close();
      });
    }

    it("the anonymous user (no owner) is one user for fairness and pending caps, but not capped in running runs", async () => {
      const { backend, queue } = await setup();
      for (let i = 0; i < 5; i++) await queue.create(newRun(`n${i}`, `anon-${i}`));
      const policy = { maxRunningPerUser: 2 };
      const claimed: string[] = [];
      for (let next = await queue.claim("w", 30_000, policy); next !== null; next = await queue.claim("w", 30_000, policy)) claimed.push(next.run_id);
      expect(claimed).toEqual(["anon-0", "anon-1", "anon-2", "anon-3", "anon-4"]);
      const limits = { maxPendingPerUser: 2, maxPendingRuns: 100 };
      await queue.create(newRun("p1", "p1"), limits);
      await queue.create(newRun("p2", "p2"), limits);
      const refused = queue.create(newRun("p3", "p3"), limits);
      await expect(refused).rejects.toMatchObject({ code: "too_many_requests", retryAfterSeconds: 5 });
      await expect(refused).rejects.toThrow(/anonymous user .* already has 2 pending runs/);
      expect(await queue.get("p3")).toBeNull();
      // A named user still has room of its own.
      await queue.create({ ...newRun("p4", "p4"), owner: "erin" }, limits);
      await backend.close();
    });

    it("ends runs pending longer than the queue deadline as timeout, with the reason, and frees their thread", async () => {
      const { backend, queue, clock } = await setup();
      await queue.create(newRun("busy", "running"));
      await queue.claim("w", 30_000);
      await queue.create(newRun("busy", "stuck"));
      const resumable = newRun("busy", "after-stuck");
      await queue.create({ ...resumable, kwargs: { ...resumable.kwargs, stream_resumable: true } });
      await queue.create(newRun("later", "delayed", "enqueue", clock.nowMs() + 10_000));
      clock.advance(999);
      expect(await queue.expireOverdue(1_000)).toEqual([]);
      clock.advance(1);
      const ended = await queue.expireOverdue(1_000);
      // Each with its thread's log, and whether its events are kept for a client that resumes.
      expect(ended.map((e) => [e.run_id, e.thread_log, e.resumable])).toEqual([
        ["stuck", "busy", false],
        ["after-stuck", "busy", true],
      ]);
      expect(ended[0]?.failure).toMatchObject({ error: "QueueTimeout", message: expect.stringMatching(/still pending 1000 ms after it became due/) });
      const stuck = await queue.get("stuck");
      expect(stuck?.status).toBe("timeout");
      expect(stuck?.error).toMatch(/timed out in the queue/);
      expect(stuck?.output).toEqual({ __error__: ended[0]?.failure });
      // The running run and the run not yet due are left alone; it is idempotent.
      expect((await queue.get("running"))?.status).toBe("running");
      expect((await queue.get("delayed"))?.status).toBe("pending");
      expect(await queue.expireOverdue(1_000)).toEqual([]);
      expect(await queue.finish("running", { owner: "w", attempt: 1 }, succeeded)).toBe("recorded");
      expect((await backend.threads.get("busy"))?.status).toBe("idle");
      // The delayed run's wait counts from when it became due.
      clock.advance(9_999);
      expect(await queue.expireOverdue(1_000)).toEqual([]);
      clock.advance(1);
      expect((await queue.expireOverdue(1_000)).map((e) => e.run_id)).toEqual(["delayed"]);
      await backend.close();
    });

    it("reschedule makes held runs due together, and leaves runs no longer pending alone", async () => {
      const { backend, queue, clock } = await setup();
      const later = clock.nowMs() + 60_000;
      await queue.create(newRun("t1", "held-1", "enqueue", later));
      await queue.create(newRun("t2", "held-2", "enqueue", later));
      await queue.create(newRun("t3", "held-3", "enqueue", later));
      expect(await queue.claim("w", 30_000)).toBeNull();
      await queue.cancel(["held-3"], "interrupt");
      const now = clock.nowMs();
      await queue.reschedule([
        { run_id: "held-1", available_at_ms: now - 5 },
        { run_id: "held-2", available_at_ms: now },
        { run_id: "held-3", available_at_ms: now },
      ]);
      expect((await queue.get("held-1"))?.available_at_ms).toBe(now - 5);
      expect((await queue.get("held-2"))?.available_at_ms).toBe(now);
      expect((await queue.get("held-3"))?.available_at_ms).toBe(later);
      const claimed = [await queue.claim("w", 30_000), await queue.claim("w", 30_000), await queue.claim("w", 30_000)];
      expect(claimed.map((run) => run?.run_id ?? null)).toEqual(["held-1", "held-2", null]);
      expect((await queue.get("held-3"))?.status).toBe("interrupted");
      // A running run is not rescheduled.
      await queue.reschedule([{ run_id: "held-1", available_at_ms: later }]);
      expect((await queue.get("held-1"))?.available_at_ms).toBe(now - 5);
      await queue.reschedule([]);
      await backend.close();
    });

    it("refuses to delete an in-flight run, and cancels pending runs directly", async () => {
      const { backend, queue } = await setup();
      await queue.create(newRun("t1", "r1"));
      await expect(queue.delete("t1", "r1")).rejects.toThrow(/cancel it first/);
      expect(await queue.cancel(["r1", "unknown"], "interrupt")).toEqual([{ run_id: "r1", was_running: false, thread_log: "t1", resumable: false }]);
      // A run of a temporary thread (a stateless run's) has no thread log to end on; a resumable one keeps its events.
      const stateless = newRun("t-temp", "r-temp");
      await queue.create({ ...stateless, kwargs: { ...stateless.kwargs, temporary: true, stream_resumable: true } });
      expect(await queue.cancel(["r-temp"], "interrupt")).toEqual([{ run_id: "r-temp", was_running: false, thread_log: undefined, resumable: true }]);
      expect((await queue.get("r1"))?.status).toBe("interrupted");
      expect(await queue.delete("t1", "r1")).toBe(true);
      await backend.close();
    });
  });
}
