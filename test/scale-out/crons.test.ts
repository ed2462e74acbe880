/**
 * Crons across processes (issue 14 items 1 and 6, docs/crons.md): an API
 * process and two worker processes on one Postgres and Redis, each worker
 * running a scheduler. A cron that fires every three seconds fires each
 * scheduled time exactly once while both schedulers race for it, and while
 * one of them is SIGKILLed at a scheduled second (the killed one either
 * committed that time with its run, or the survivor fires it), and while a
 * new worker starts and joins the race. And with no worker running, a
 * cron's missed times are skipped but the latest, fired once a worker starts.
 *
 * Its runs keep their threads (on_run_completed keep), so every fire is a
 * thread whose metadata names the cron and the scheduled time.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type Cluster, type Member } from "../helpers/cluster.ts";
import { human, until } from "../helpers/server.ts";

/**
 * A scheduler that reaches a time later than one period fires only the
 * latest (the missed-fire policy), so the period is the slack a loaded
 * machine has to fire each time after a kill; 3 s divides a minute.
 */
const PERIOD_MS = 3_000;

let cluster: Cluster;
let api: Member;
let workers: Member[];
beforeAll(async () => {
  cluster = await startCluster("crons", { BATON_LEASE_MS: "4000", BATON_LEASE_RENEW_MS: "500", BATON_SWEEP_INTERVAL_MS: "500" });
  api = await cluster.start("api");
  workers = await Promise.all([cluster.start("worker"), cluster.start("worker")]);
}, 60_000);
afterAll(async () => {
  await cluster?.close();
});

/** The scheduled times fired for the cron so far, one entry per run (a duplicate would appear twice). */
async function firedTimes(cronId: string, client = api.client): Promise<number[]> {
  const threads = await client.threads.search({ metadata: { cron_id: cronId }, limit: 1000 });
  return threads.map((t) => Date.parse(t.metadata!.cron_scheduled_at as string)).sort((a, b) => a - b);
}

describe("a cron on two worker processes", () => {
  it("fires each scheduled time once, also when a worker is SIGKILLed at a scheduled second and another starts", { timeout: 120_000 }, async () => {
    const cron = await api.client.crons.create("echo", { schedule: "*/3 * * * * *", input: human("tick"), onRunCompleted: "keep" });
    // A few fires with both schedulers racing.
    await until(async () => ((await firedTimes(cron.cron_id)).length >= 3 ? true : undefined), "three fires", 30_000);
    // SIGKILL one worker at the next scheduled second.
    const current = (await api.client.crons.search({ metadata: {}, limit: 1000 })).find((c) => c.cron_id === cron.cron_id)!;
    const killAt = Date.parse(current.next_run_date!) + PERIOD_MS;
    await new Promise((resolve) => setTimeout(resolve, killAt - Date.now()));
    await workers[0]!.stop("SIGKILL");
    // The survivor goes on: the killed second and three more are fired.
    await until(async () => ((await firedTimes(cron.cron_id)).filter((t) => t >= killAt).length >= 4 ? true : undefined), "fires after the kill", 30_000);
    // A worker that starts while the cron runs joins the race without firing any time twice.
    const joined = Date.now();
    workers.push(await cluster.start("worker"));
    await until(async () => ((await firedTimes(cron.cron_id)).filter((t) => t >= joined).length >= 4 ? true : undefined), "fires after a worker joined", 30_000);
    await api.client.crons.delete(cron.cron_id);

    const times = await firedTimes(cron.cron_id);
    // Exactly once: no scheduled time has two runs, and none between the first and the last is missing.
    expect(new Set(times).size).toBe(times.length);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!, `gap after ${new Date(times[i - 1]!).toISOString()}`).toBe(PERIOD_MS);
    expect(times).toContain(killAt);
    // Both workers fired some while both ran (they race for every time), and the survivor after the kill.
    const firedBy = (m: Member) => m.baton.output().stderr.split("\n").filter((l) => l.includes('"cron:fired"') && l.includes(cron.cron_id)).length;
    const logged = workers.reduce((sum, w) => sum + firedBy(w), 0);
    // (A worker killed between committing a fire and logging it leaves one line out.)
    expect(logged).toBeGreaterThanOrEqual(times.length - 1);
    expect(logged).toBeLessThanOrEqual(times.length);
    expect(firedBy(workers[1]!)).toBeGreaterThan(0);
  });
});

describe("a cron while no worker runs", () => {
  it("fires once, for the latest missed time, when a worker starts; the older missed times are skipped", { timeout: 90_000 }, async () => {
    const quiet = await startCluster("crons_missed");
    try {
      const front = await quiet.start("api");
      const cron = await front.client.crons.create("echo", { schedule: "*/3 * * * * *", input: human("late"), onRunCompleted: "keep" });
      const due = Date.parse(cron.next_run_date);
      // Three scheduled times pass with no scheduler (an API process fires nothing). Time passing is
      // what is tested here, so this waits for it.
      await new Promise((resolve) => setTimeout(resolve, due + 3 * PERIOD_MS + 100 - Date.now()));
      expect(await firedTimes(cron.cron_id, front.client)).toEqual([]);
      await quiet.start("worker");
      await until(async () => ((await firedTimes(cron.cron_id, front.client)).length >= 2 ? true : undefined), "fires once a worker runs", 30_000);
      await front.client.crons.delete(cron.cron_id);
      const times = await firedTimes(cron.cron_id, front.client);
      // No catch-up burst: the first fire is a time after the three missed ones, then the schedule's cadence.
      expect(times[0]).toBeGreaterThanOrEqual(due + 3 * PERIOD_MS);
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(PERIOD_MS);
    } finally {
      await quiet.close();
    }
  });
});
