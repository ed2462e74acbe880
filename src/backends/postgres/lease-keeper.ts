/**
 * Renews a worker's leases from a separate thread with its own connection,
 * so a graph node that blocks the event loop (a synchronous loop, a huge
 * JSON.parse) for longer than the lease does not get its live run judged
 * dead and re-dispatched by another worker's sweeper (C9).
 *
 * It renews every run leased to its owner, not a list the main thread keeps:
 * a claim whose reply the blocked loop has not read yet is covered too. Runs
 * the main thread has let go of are excluded (`drop`), so a run whose outcome
 * could not be recorded (the database was away) lets its lease expire and is
 * swept, rather than being held forever.
 *
 * Consequence, by design: a run whose event loop never comes back keeps its
 * lease as long as its process lives. Kill the process (a liveness probe on
 * /ok does) and the lease expires.
 *
 * Its time is the process's clock (the one the queue was given), not the
 * thread's own `Date.now()`: the thread cannot call the clock, so the main
 * thread publishes the clock's offset from the system clock in shared memory
 * at every renewal period, and the thread adds it to `Date.now()`. For the
 * system clock the offset is 0; for any clock that advances with real time
 * it stays right while the main loop is blocked.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import type { Clock } from "../../core/clock.ts";
import type { LeaseKeeper } from "../../core/ports.ts";

// Plain CommonJS, evaluated in the thread: no TypeScript loader needed there.
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const pg = require(workerData.pgPath);
const { url, owner, leaseMs, renewMs } = workerData;
/** The process clock's offset from Date.now(), kept current by the main thread. */
const clockOffset = new BigInt64Array(workerData.clockOffset);
const clockNow = () => Date.now() + Number(Atomics.load(clockOffset, 0));
/** run id -> when it was dropped; forgotten after FORGET_MS (its lease is long gone by then). */
const dropped = new Map();
const FORGET_MS = Math.max(600000, leaseMs * 20);
let client = null;
let busy = false;
let closing = false;
async function connection() {
  if (client !== null) return client;
  const fresh = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: Math.min(5000, renewMs),
    query_timeout: Math.max(1000, Math.floor(leaseMs / 2)),
    keepAlive: true,
  });
  fresh.on("error", () => { if (client === fresh) client = null; });
  await fresh.connect();
  client = fresh;
  return fresh;
}
async function renew() {
  if (busy || closing) return;
  busy = true;
  try {
    const now = Date.now();
    for (const [id, at] of dropped) if (now - at > FORGET_MS) dropped.delete(id);
    const db = await connection();
    // Read after connecting: a slow connect must not age the expiry it writes.
    const expires = clockNow() + leaseMs;
    // In run_id order, as extendLeases: concurrent renewals never deadlock.
    await db.query(
      "UPDATE runs SET lease_expires_ms = $1 WHERE run_id IN (SELECT run_id FROM runs WHERE lease_owner = $2 AND status = 'running'" +
        " AND NOT (run_id = ANY($3::text[])) ORDER BY run_id FOR UPDATE)",
      [expires, owner, [...dropped.keys()]],
    );
  } catch (error) {
    const broken = client;
    client = null;
    if (broken !== null) broken.end().catch(() => {});
    parentPort.postMessage({ type: "error", message: String((error && error.message) || error) });
  } finally {
    busy = false;
  }
}
const timer = setInterval(renew, renewMs);
parentPort.on("message", (message) => {
  if (message.type === "drop") dropped.set(message.runId, Date.now());
  else if (message.type === "close") {
    closing = true;
    clearInterval(timer);
    const db = client;
    client = null;
    (db === null ? Promise.resolve() : db.end()).catch(() => {}).finally(() => parentPort.close());
  }
});
`;

export interface ThreadLeaseKeeperOptions {
  url: string;
  owner: string;
  leaseMs: number;
  renewMs: number;
  /** The process's clock: lease expiries are its time plus the lease. */
  clock: Clock;
  onError?: (message: string) => void;
}

export function startThreadLeaseKeeper(options: ThreadLeaseKeeperOptions): LeaseKeeper {
  const pgPath = createRequire(import.meta.url).resolve("pg");
  const clockOffset = new SharedArrayBuffer(8);
  const offsetView = new BigInt64Array(clockOffset);
  const publishOffset = () => Atomics.store(offsetView, 0, BigInt(Math.round(options.clock.nowMs() - Date.now())));
  publishOffset();
  const offsetTimer = setInterval(publishOffset, options.renewMs);
  offsetTimer.unref();
  let closing = false;
  let worker: Worker;
  let exit: Promise<void>;
  let exited = false;
  /**
   * The thread catches its own errors (a lost connection is reopened at the
   * next renewal); should it die anyway, another is started, so this
   * process's live runs do not lose their leases.
   */
  const start = () => {
    exited = false;
    worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: { pgPath, url: options.url, owner: options.owner, leaseMs: options.leaseMs, renewMs: options.renewMs, clockOffset },
    });
    worker.unref();
    worker.on("message", (message: { type: string; message?: string }) => {
      if (message.type === "error") options.onError?.(message.message ?? "unknown error");
    });
    worker.on("error", (error) => options.onError?.(`lease thread failed: ${error.message}`));
    exit = new Promise<void>((resolve) =>
      worker.once("exit", () => {
        exited = true;
        resolve();
        if (!closing) {
          options.onError?.("lease thread stopped; starting another in 1 s");
          // After a pause, so a thread that cannot start does not spin.
          const timer = setTimeout(() => {
            if (closing) return;
            start();
            // The runs let go of are let go of by the new thread too.
            for (const runId of dropped.keys()) worker.postMessage({ type: "drop", runId });
          }, 1_000);
          timer.unref();
        }
      }),
    );
  };
  /** Runs let go of, for a restarted thread: run id -> when; forgotten as the thread forgets them. */
  const dropped = new Map<string, number>();
  const forgetMs = Math.max(600_000, options.leaseMs * 20);
  start();
  return {
    drop: (runId) => {
      const now = Date.now();
      for (const [id, at] of dropped) if (now - at > forgetMs) dropped.delete(id);
      dropped.set(runId, now);
      if (!exited) worker.postMessage({ type: "drop", runId });
    },
    async close() {
      closing = true;
      clearInterval(offsetTimer);
      if (exited) return;
      worker.postMessage({ type: "close" });
      const timer = setTimeout(() => void worker.terminate(), 2_000);
      await exit;
      clearTimeout(timer);
    },
  };
}
