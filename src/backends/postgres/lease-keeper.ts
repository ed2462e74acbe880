/**
 * Renews a worker's leases from a separate thread with its own connection,
 * so a graph node that blocks the event loop (a synchronous loop, a huge
 * JSON.parse) for longer than the lease does not get its live run judged
 * dead and re-dispatched by another worker's sweeper (C9). The main thread
 * says which runs it holds; the thread keeps renewing them until told
 * otherwise, whatever the main thread is doing.
 *
 * Consequence, by design: a run whose event loop never comes back keeps its
 * lease as long as its process lives. Kill the process (a liveness probe on
 * /ok does) and the lease expires.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import type { LeaseKeeper } from "../../core/ports.ts";

// Plain CommonJS, evaluated in the thread: no TypeScript loader needed there.
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const pg = require(workerData.pgPath);
const { url, owner, leaseMs, renewMs } = workerData;
const held = new Set();
let client = null;
let closing = false;
async function connection() {
  if (client !== null) return client;
  const fresh = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  fresh.on("error", () => { if (client === fresh) client = null; });
  await fresh.connect();
  client = fresh;
  return fresh;
}
async function renew() {
  if (held.size === 0 || closing) return;
  try {
    const db = await connection();
    await db.query(
      "UPDATE runs SET lease_expires_ms = $1 WHERE run_id = ANY($2::text[]) AND status = 'running' AND lease_owner = $3",
      [Date.now() + leaseMs, [...held], owner],
    );
  } catch (error) {
    const broken = client;
    client = null;
    if (broken !== null) broken.end().catch(() => {});
    parentPort.postMessage({ type: "error", message: String(error && error.message || error) });
  }
}
const timer = setInterval(renew, renewMs);
parentPort.on("message", (message) => {
  if (message.type === "hold") held.add(message.runId);
  else if (message.type === "drop") held.delete(message.runId);
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
  onError?: (message: string) => void;
}

export function startThreadLeaseKeeper(options: ThreadLeaseKeeperOptions): LeaseKeeper {
  const pgPath = createRequire(import.meta.url).resolve("pg");
  const worker = new Worker(THREAD_SOURCE, {
    eval: true,
    workerData: { pgPath, url: options.url, owner: options.owner, leaseMs: options.leaseMs, renewMs: options.renewMs },
  });
  worker.unref();
  worker.on("message", (message: { type: string; message?: string }) => {
    if (message.type === "error") options.onError?.(message.message ?? "unknown error");
  });
  worker.on("error", (error) => options.onError?.(error.message));
  return {
    hold: (runId) => worker.postMessage({ type: "hold", runId }),
    drop: (runId) => worker.postMessage({ type: "drop", runId }),
    async close() {
      const exited = new Promise((resolve) => worker.once("exit", resolve));
      worker.postMessage({ type: "close" });
      const timer = setTimeout(() => void worker.terminate(), 2_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
