/**
 * One clock per process, checked against the database's (issue 16, item 5):
 * the lease thread writes the process clock's time, not its own; a process
 * whose clock is off by more than a quarter of the lease refuses to start,
 * one within it starts; and one whose clock drifts past the limit later
 * neither sweeps (steals) nor claims until it is back.
 */
import pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { until } from "../helpers/server.ts";
import { createPostgresBackend, guardClock } from "../../src/backends/postgres/index.ts";
import type { Clock } from "../../src/core/clock.ts";
import type { Logger } from "../../src/core/logger.ts";
import type { Backend } from "../../src/core/ports.ts";
import { ManualClock, newRun } from "../../src/testing/index.ts";

const HOUR_MS = 3_600_000;

let db: TestDatabase;
let admin: pg.Client;
beforeAll(async () => {
  db = await freshDatabase("clock");
  admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
});
afterAll(async () => {
  await admin?.end();
  await db?.drop();
});

const backends: Backend[] = [];
async function backendWith(clock: Clock): Promise<Backend> {
  const backend = await createPostgresBackend({ url: db.url, poolSize: 2, clock, migrate: true });
  backends.push(backend);
  return backend;
}
beforeEach(async () => {
  await Promise.all(backends.splice(0).map((b) => b.close()));
});
afterAll(async () => {
  await Promise.all(backends.splice(0).map((b) => b.close()));
});

/** The system clock moved by a changeable amount. */
const skewed = (skewMs: number) => {
  const clock = { skewMs, nowMs: () => Date.now() + clock.skewMs };
  return clock;
};

function recordingLogger(): Logger & { lines: { level: string; msg: string; fields: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const at = (level: string) => (msg: string, fields: Record<string, unknown> = {}) => void lines.push({ level, msg, fields });
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

const leaseOf = async (runId: string) =>
  (await admin.query<{ lease_expires_ms: string }>("SELECT lease_expires_ms FROM runs WHERE run_id = $1", [runId])).rows[0]!.lease_expires_ms;

describe("the Postgres lease thread", () => {
  it("renews leases on the process's clock (the injected one), not on its own Date.now()", async () => {
    // A clock an hour ahead of the system's, which tests move by hand.
    const clock = new ManualClock(Date.now() + HOUR_MS);
    const backend = await backendWith(clock);
    const runId = `r-${crypto.randomUUID()}`;
    await backend.runs.create(newRun(`t-${crypto.randomUUID()}`, runId));
    const claimed = await backend.runs.claim("w-lease-thread", 1_000);
    expect(claimed?.run_id).toBe(runId);
    const claimedExpiry = Number(await leaseOf(runId));
    expect(claimedExpiry).toBe(clock.nowMs() + 1_000);

    const leaseMs = 600_000;
    const errors: string[] = [];
    const keeper = backend.runs.keepLeases!({ owner: "w-lease-thread", leaseMs, renewMs: 100, onError: (m) => errors.push(m) });
    try {
      // The thread renews on its own timer: a fact in another thread, polled.
      const renewed = Number(await until(async () => ((await leaseOf(runId)) !== String(claimedExpiry) ? await leaseOf(runId) : undefined), "a renewal"));
      // On the thread's own clock it would be an hour early (Date.now() + leaseMs).
      expect(renewed).toBeGreaterThanOrEqual(clock.nowMs() + leaseMs);
      expect(renewed).toBeLessThan(clock.nowMs() + leaseMs + HOUR_MS / 2);

      // The clock moves: the thread follows (the offset is republished, not taken once).
      clock.advance(HOUR_MS);
      const later = Number(await until(async () => (Number(await leaseOf(runId)) >= clock.nowMs() + leaseMs ? await leaseOf(runId) : undefined), "a renewal on the moved clock"));
      expect(later).toBeLessThan(clock.nowMs() + leaseMs + HOUR_MS / 2);
      expect(errors).toEqual([]);
    } finally {
      await keeper.close();
    }
  });
});

describe("the clock check at start (guardClock)", () => {
  it("refuses a process whose clock is ahead of the database's by more than a quarter of the lease, naming the offset and the limit", async () => {
    const backend = await backendWith(skewed(60_000));
    await expect(guardClock(backend, 30_000, recordingLogger())).rejects.toThrow(
      /clock is 60\.\d s ahead of the database server's \(measured to within ±\d+ ms\); Baton allows at most 7500 ms \(a quarter of BATON_LEASE_MS, 30000 ms\).*NTP/,
    );
  });

  it("refuses one whose clock is behind as well", async () => {
    const backend = await backendWith(skewed(-20_000));
    await expect(guardClock(backend, 30_000, recordingLogger())).rejects.toThrow(/clock is 2\d\.\d s behind the database server's.*at most 7500 ms/);
  });

  it("lets a process start whose clock is off by less than the limit", async () => {
    const backend = await backendWith(skewed(3_000));
    await expect(guardClock(backend, 30_000, recordingLogger())).resolves.toBeUndefined();
  });
});

describe("a clock that drifts past the limit after start", () => {
  it("makes the process stop sweeping and claiming (logged as clock:skew) until it is back within the limit", async () => {
    await admin.query("TRUNCATE threads, runs CASCADE");
    const clock = skewed(0);
    const logger = recordingLogger();
    const backend = await backendWith(clock);
    await guardClock(backend, 30_000, logger);
    const queue = backend.runs;

    // A live run, leased for 30 s by another worker.
    await queue.create(newRun(`t-${crypto.randomUUID()}`, "r-live"));
    expect((await queue.claim("w-other", 30_000))?.run_id).toBe("r-live");
    await queue.create(newRun(`t-${crypto.randomUUID()}`, "r-waiting"));

    // This process's clock jumps a minute ahead: by it, r-live's lease has expired.
    clock.skewMs = 60_000;
    expect(await queue.sweep(3)).toEqual({ requeued: [], failed: [] });
    expect(await queue.claim("w-skewed", 30_000)).toBeNull();
    const warning = logger.lines.find((line) => line.msg === "clock:skew");
    expect(warning?.level).toBe("warn");
    expect(warning?.fields.limit_ms).toBe(7_500);
    expect(warning?.fields.offset_ms as number).toBeLessThan(-50_000);
    expect(warning?.fields.detail).toMatch(/clock is 60\.\d s ahead of the database's .*; it claims no run and judges no lease/);
    const rows = (await admin.query<{ run_id: string; status: string; lease_owner: string | null }>("SELECT run_id, status, lease_owner FROM runs ORDER BY run_id")).rows;
    expect(rows).toEqual([
      { run_id: "r-live", status: "running", lease_owner: "w-other" },
      { run_id: "r-waiting", status: "pending", lease_owner: null },
    ]);

    // Back in step: the next sweep clears it, and claims resume.
    clock.skewMs = 0;
    expect(await queue.sweep(3)).toEqual({ requeued: [], failed: [] });
    expect(logger.lines.find((line) => line.msg === "clock:skew-cleared")?.level).toBe("info");
    expect((await queue.claim("w-skewed", 30_000))?.run_id).toBe("r-waiting");
  });
});
