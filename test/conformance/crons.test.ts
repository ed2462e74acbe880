/**
 * The cron fire key on both backends (docs/crons.md, "Exactly once"): a
 * scheduled time is claimed in the transaction that creates its run, so
 * schedulers racing for it (each with its own connections, as processes
 * have), or a scheduler retrying it after a restart, create one run; a run
 * that cannot be created claims nothing; a disabled, moved or deleted cron
 * does not fire; a thread's crons go with it.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresBackend } from "../../src/backends/postgres/index.ts";
import { createSqliteBackend } from "../../src/backends/sqlite/index.ts";
import { NoAuthorizer } from "../../src/core/authorizer.ts";
import { SYSTEM_CONTEXT } from "../../src/core/context.ts";
import { CronService, type CronServiceDeps } from "../../src/core/cron-service.ts";
import { CronFireTaken, type Cron, type CronFire } from "../../src/core/crons.ts";
import { BatonError, ErrorCode } from "../../src/core/errors.ts";
import type { Backend } from "../../src/core/ports.ts";
import { ManualClock, newRun } from "../../src/testing/index.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";

interface Kind {
  name: string;
  /** A backend on the shared database; each call its own connections (as a separate process has). */
  open(clock: ManualClock): Promise<Backend>;
  setup(): Promise<void>;
  teardown(): Promise<void>;
}

let dir: string;
let database: TestDatabase;
const KINDS: Kind[] = [
  {
    name: "sqlite",
    setup: async () => {
      dir = mkdtempSync(join(tmpdir(), "baton-crons-"));
    },
    open: async (clock) => createSqliteBackend({ path: join(dir, "baton.sqlite"), busyTimeoutMs: 5_000, clock }),
    teardown: async () => rmSync(dir, { recursive: true, force: true }),
  },
  {
    name: "postgres",
    setup: async () => {
      database = await freshDatabase("crons");
    },
    open: (clock) => createPostgresBackend({ url: database.url, poolSize: 4, clock, migrate: true }),
    teardown: async () => database.drop(),
  },
];

const HOUR = 3_600_000;

for (const kind of KINDS) {
  describe(`cron fire key (${kind.name})`, () => {
    const clock = new ManualClock(Date.UTC(2025, 0, 1, 0, 30));
    let a: Backend;
    let b: Backend;
    beforeAll(async () => {
      await kind.setup();
      a = await kind.open(clock);
      b = await kind.open(clock);
    });
    afterAll(async () => {
      await a?.close();
      await b?.close();
      await kind.teardown();
    });

    /** An hourly stateless cron due at 00:00 (its next time after that: 01:00). */
    async function dueCron(extra: Partial<Cron> = {}): Promise<{ cron: Cron; fire: CronFire }> {
      const cron = await a.crons.create({
        cron_id: randomUUID(),
        assistant_id: "assistant",
        thread_id: null,
        on_run_completed: "keep",
        end_time: null,
        schedule: "0 * * * *",
        timezone: null,
        user_id: null,
        payload: {},
        next_run_ms: Date.UTC(2025, 0, 1, 0, 0),
        metadata: {},
        enabled: true,
        ...extra,
      });
      return { cron, fire: { cron_id: cron.cron_id, scheduled_ms: cron.next_run_ms!, next_ms: cron.next_run_ms! + HOUR } };
    }
    const fireRun = (fire: CronFire, threadId = randomUUID()) => ({ ...newRun(threadId, randomUUID()), cron_fire: fire });
    const outcome = async (p: Promise<unknown>) => {
      try {
        await p;
        return "created" as const;
      } catch (error) {
        if (error instanceof CronFireTaken) return "taken" as const;
        throw error;
      }
    };

    it("schedulers racing for one time create one run, and the cron moves to its next time", async () => {
      const { cron, fire } = await dueCron();
      const results = await Promise.all([a, b, a, b, a, b].map((backend) => outcome(backend.runs.create(fireRun(fire)))));
      expect(results.filter((r) => r === "created")).toHaveLength(1);
      expect(results.filter((r) => r === "taken")).toHaveLength(5);
      expect((await b.crons.get(cron.cron_id))!.next_run_ms).toBe(fire.next_ms);
      expect(await a.crons.due(fire.scheduled_ms + HOUR - 1, 10)).not.toContainEqual(expect.objectContaining({ cron_id: cron.cron_id }));
    });

    it("a scheduler that retries a time already fired (a restart, a stale read) creates nothing", async () => {
      const { fire } = await dueCron();
      await a.runs.create(fireRun(fire));
      await expect(b.runs.create(fireRun(fire))).rejects.toBeInstanceOf(CronFireTaken);
      // Even with the cron moved back by hand, the fire key itself refuses the time.
      await a.crons.advance(fire.cron_id, fire.next_ms!, fire.scheduled_ms);
      await expect(b.runs.create(fireRun(fire))).rejects.toThrow(/already fired/);
      // And a time before the latest fire (whose key is no longer kept) is refused too.
      const earlier = { ...fire, scheduled_ms: fire.scheduled_ms - HOUR };
      await a.crons.advance(fire.cron_id, fire.scheduled_ms, earlier.scheduled_ms);
      await expect(b.runs.create(fireRun(earlier))).rejects.toThrow(/already fired/);
    });

    it("a run that cannot be created claims nothing: the time can still fire", async () => {
      const { cron, fire } = await dueCron();
      const missing = { ...fireRun(fire), if_not_exists: "reject" as const };
      await expect(a.runs.create(missing)).rejects.toThrow(/not found/);
      expect((await a.crons.get(cron.cron_id))!.next_run_ms).toBe(fire.scheduled_ms);
      await expect(outcome(b.runs.create(fireRun(fire)))).resolves.toBe("created");
    });

    it("a disabled, rescheduled or deleted cron does not fire", async () => {
      const disabled = await dueCron({ enabled: false });
      await expect(a.runs.create(fireRun(disabled.fire))).rejects.toThrow(/disabled/);
      const moved = await dueCron();
      await a.crons.patch(moved.cron.cron_id, () => ({ next_run_ms: moved.fire.scheduled_ms + 2 * HOUR }));
      await expect(a.runs.create(fireRun(moved.fire))).rejects.toBeInstanceOf(CronFireTaken);
      const deleted = await dueCron();
      expect(await a.crons.delete(deleted.cron.cron_id)).toBe(true);
      await expect(b.runs.create(fireRun(deleted.fire))).rejects.toThrow(/deleted/);
    });

    it("advance moves a cron on only from the time it was read at", async () => {
      const { cron, fire } = await dueCron();
      expect(await a.crons.advance(cron.cron_id, fire.scheduled_ms, fire.next_ms)).toBe(true);
      expect(await b.crons.advance(cron.cron_id, fire.scheduled_ms, fire.next_ms! + HOUR)).toBe(false);
      expect((await a.crons.get(cron.cron_id))!.next_run_ms).toBe(fire.next_ms);
    });

    /**
     * The cron service over this backend, firing through `create` (a run on a new thread with the
     * fire key, as RunService.createForCron does; a test may make it fail instead).
     */
    const signals = { count: 0 };
    function service(
      backend: Backend,
      create: (cron: Cron, fire: CronFire) => Promise<unknown> = (_cron, fire) => backend.runs.create(fireRun(fire)),
      crons: Partial<Backend["crons"]> = {},
    ) {
      const records = backend.crons;
      const deps = {
        crons: {
          due: (nowMs: number, limit: number, after?: { next_run_ms: number; cron_id: string }) => records.due(nowMs, limit, after),
          check: (cronId: string, nowMs: number) => records.check(cronId, nowMs),
          advance: (cronId: string, fromMs: number, nextMs: number | null) => records.advance(cronId, fromMs, nextMs),
          patch: records.patch.bind(records),
          ...crons,
        },
        authorizer: new NoAuthorizer(),
        clock,
        runs: {
          createForCron: async (cron: Cron, fire: CronFire) => ({ ...((await create(cron, fire)) as { run: object })?.run, run_id: randomUUID(), thread_id: randomUUID() }),
          signalWork: () => signals.count++,
        },
      } as unknown as CronServiceDeps;
      return new CronService(deps);
    }

    it("a patch written from a read before the fire cannot put the cron back on the fired time (no spin)", async () => {
      const { cron, fire } = await dueCron();
      // The patch read the cron while 00:00 was due; the scheduler fires 00:00; the patch then writes 00:00 back.
      await a.runs.create(fireRun(fire));
      let seenLastFire: number | null | undefined;
      await b.crons.patch(cron.cron_id, (_current, lastFireMs) => {
        seenLastFire = lastFireMs;
        return { next_run_ms: fire.scheduled_ms };
      });
      expect(seenLastFire).toBe(fire.scheduled_ms);
      // The next look's check moves it past the fired time in its own transaction, and reports it taken.
      await expect(b.crons.check(cron.cron_id, clock.nowMs())).resolves.toMatchObject({ state: "taken" });
      expect((await a.crons.get(cron.cron_id))!.next_run_ms).toBe(fire.next_ms);
      expect(await a.crons.due(clock.nowMs(), 1000)).not.toContainEqual(expect.objectContaining({ cron_id: cron.cron_id }));
    });

    it("a patch through the service after a fire keeps the cron past it, and one of metadata alone keeps a due fire", async () => {
      const crons = service(a);
      const { cron, fire } = await dueCron();
      // Metadata and run fields alone: the due time stays due.
      await crons.update(SYSTEM_CONTEXT, cron.cron_id, { metadata: { note: "x" }, payload: { input: { n: 1 } } });
      expect((await a.crons.get(cron.cron_id))!.next_run_ms).toBe(fire.scheduled_ms);
      expect(await crons.fireDue(clock.nowMs())).toContainEqual(expect.objectContaining({ cron_id: cron.cron_id, result: "fired", scheduled_ms: fire.scheduled_ms }));
      // A schedule change after the fire computes from the fired time on (here 00:00 is also a match, and is not given again).
      const updated = await crons.update(SYSTEM_CONTEXT, cron.cron_id, { schedule: "0 */2 * * *" });
      expect(updated.next_run_ms).toBe(fire.scheduled_ms + 2 * HOUR);
      expect(updated.metadata).toEqual({ note: "x" });
    });

    it("a fire builds its run from the cron as the check read it, not from the scheduler's earlier list", async () => {
      const { cron } = await dueCron({ payload: { input: { v: "old" } } });
      const listed = await a.crons.due(clock.nowMs(), 1000);
      await b.crons.patch(cron.cron_id, () => ({ payload: { input: { v: "new" } } }));
      const seen: unknown[] = [];
      const crons = service(
        a,
        async (fired, fire) => {
          if (fired.cron_id === cron.cron_id) seen.push(fired.payload);
          return a.runs.create(fireRun(fire));
        },
        { due: async () => listed.filter((c) => c.cron_id === cron.cron_id) },
      );
      await crons.fireDue(clock.nowMs());
      expect(seen).toEqual([{ input: { v: "new" } }]);
    });

    it("a cron whose schedule no longer parses is stopped alone; the others in the batch fire", async () => {
      const crons = service(a);
      const bad = await dueCron({ schedule: "not a schedule" });
      const badZone = await dueCron({ timezone: "Mars/Olympus_Mons" });
      const good = await dueCron();
      const outcomes = await crons.fireDue(clock.nowMs());
      expect(outcomes).toContainEqual(expect.objectContaining({ cron_id: bad.cron.cron_id, result: "refused", next_ms: null }));
      expect(outcomes).toContainEqual(expect.objectContaining({ cron_id: badZone.cron.cron_id, result: "refused", next_ms: null }));
      expect(outcomes).toContainEqual(expect.objectContaining({ cron_id: good.cron.cron_id, result: "fired" }));
      expect((await a.crons.get(bad.cron.cron_id))!.next_run_ms).toBeNull();
      expect(await crons.fireDue(clock.nowMs())).not.toContainEqual(expect.objectContaining({ cron_id: bad.cron.cron_id }));
    });

    it("a fire that fails transiently or on the queue cap stays due; a domain refusal skips the time", async () => {
      const failures: [unknown, "retry" | "refused"][] = [
        [new Error("deadlock detected"), "retry"],
        [new BatonError(ErrorCode.unavailable, "database down"), "retry"],
        [new BatonError(ErrorCode.tooMany, "too many pending runs"), "retry"],
        [new BatonError(ErrorCode.busy, "thread busy under reject"), "refused"],
        [new BatonError(ErrorCode.notFound, "assistant gone"), "refused"],
      ];
      for (const [error, result] of failures) {
        const { cron, fire } = await dueCron();
        const crons = service(a, async () => {
          throw error;
        });
        const outcomes = await crons.fireDue(clock.nowMs());
        expect(outcomes.find((o) => o.cron_id === cron.cron_id)).toMatchObject({ result });
        expect((await a.crons.get(cron.cron_id))!.next_run_ms).toBe(result === "retry" ? fire.scheduled_ms : fire.next_ms);
        await a.crons.delete(cron.cron_id);
      }
    });

    it("a burst of 300 crons due at one time, fired by two schedulers at once: one run per cron, one work signal per batch", async () => {
      const burst = await Promise.all(Array.from({ length: 300 }, () => dueCron()));
      const ids = new Set(burst.map((c) => c.cron.cron_id));
      const before = signals.count;
      const [first, second] = await Promise.all([service(a).fireDue(clock.nowMs()), service(b).fireDue(clock.nowMs())]);
      const fired = [...first, ...second].filter((o) => ids.has(o.cron_id) && o.result === "fired");
      expect(fired).toHaveLength(300);
      expect(new Set(fired.map((o) => o.cron_id)).size).toBe(300);
      // Batches of 100: at most three signals per scheduler, not one per run.
      expect(signals.count - before).toBeLessThanOrEqual(8);
      expect((await a.crons.due(clock.nowMs(), 1000)).filter((c) => ids.has(c.cron_id))).toEqual([]);
      for (const c of burst) await a.crons.delete(c.cron.cron_id);
    });

    it("fireDue tries each due cron once per call, past a full page of crons that stay due", async () => {
      const stuck = await Promise.all(Array.from({ length: 105 }, () => dueCron()));
      let calls = 0;
      const crons = service(a, async () => {
        calls++;
        throw new Error("transient");
      });
      const outcomes = await crons.fireDue(clock.nowMs());
      const ids = new Set(stuck.map((s) => s.cron.cron_id));
      expect(outcomes.filter((o) => ids.has(o.cron_id))).toHaveLength(105);
      expect(calls).toBe(outcomes.filter((o) => o.result === "retry").length);
      for (const s of stuck) await a.crons.delete(s.cron.cron_id);
    });

    if (kind.name === "postgres") {
      it("a scheduler whose clock runs ahead of the database's fires nothing early", async () => {
        const ahead = Date.now() + HOUR;
        const { fire } = await dueCron({ next_run_ms: ahead });
        await expect(a.runs.create(fireRun({ ...fire, scheduled_ms: ahead }))).rejects.toThrow(/database's clock/);
      });
    }

    it("a thread's crons are deleted with the thread", async () => {
      const thread = await a.threads.create({ thread_id: randomUUID(), metadata: {}, if_exists: "raise" });
      const { cron } = await dueCron({ thread_id: thread.thread_id, on_run_completed: null });
      expect(await a.threads.delete(thread.thread_id)).toBe(true);
      expect(await b.crons.get(cron.cron_id)).toBeNull();
    });
  });
}
