/**
 * Inside an execution thread: a WorkerPool on a SQLite connection of its
 * own (same file, WAL), with the project's graphs loaded here. The queue in
 * the database decides who runs what (C1), exactly as between processes;
 * events, logs and webhooks go to the HTTP thread in batches, one message
 * per turn of this thread's event loop. Started by `worker/execution-threads.ts`;
 * a composition root like server.ts, for the thread.
 */
import { parentPort, workerData } from "node:worker_threads";
import { MemoryEventBus } from "./backends/memory/event-bus.ts";
import { createSqliteBackend } from "./backends/sqlite/index.ts";
import { systemClock } from "./core/clock.ts";
import { coerceError } from "./core/errors.ts";
import { GraphRegistry } from "./core/graphs.ts";
import { ItemsStore } from "./core/graph-store.ts";
import { storeIndexFrom, storeTtlSettings } from "./core/store-index.ts";
import { LEVEL_ORDER, type Logger, type LogLevel } from "./core/logger.ts";
import type { RunMetrics } from "./core/metrics.ts";
import { fetchVia, registerLoopbackFetch, registerSdkLogger } from "./project/globals.ts";
import type { RunEvent, ThreadEvent } from "./core/types.ts";
import type { FromThread, ThreadData, ThreadReport, ToThread } from "./worker/thread-protocol.ts";
import { startTracing } from "./tracing/sdk.ts";
import { WorkerPool } from "./worker/worker-pool.ts";

const port = parentPort!;
const data = workerData as ThreadData;

const post = (message: FromThread) => port.postMessage(message);

/** Reports wait here until the end of the current turn of the event loop. */
let pending: ThreadReport[] = [];
let flushScheduled = false;

function flush(): void {
  flushScheduled = false;
  if (pending.length === 0) return;
  const reports = pending;
  pending = [];
  try {
    post({ type: "reports", reports });
  } catch {
    // A value the structured clone cannot copy (a graph put a function or a
    // class with private state in an event): send what JSON keeps of it.
    post({ type: "reports", reports: JSON.parse(JSON.stringify(reports)) as ThreadReport[] });
  }
}

function report(item: ThreadReport): void {
  pending.push(item);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
}

const log = (level: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
  // `time` is when it happened here, not when the HTTP thread writes the line.
  if (LEVEL_ORDER[level] >= LEVEL_ORDER[data.logLevel]) report({ kind: "log", level, msg, fields: { ...fields, thread: data.index, time: new Date().toISOString() } });
};
const logger: Logger = { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };

/**
 * The pool's metrics go to the HTTP thread, where they are counted with the
 * rest of the process's (so /metrics there loses none of a thread's runs),
 * in the same batches as the runs' events.
 */
const forward =
  <K extends keyof RunMetrics>(name: K) =>
  (...args: Parameters<RunMetrics[K]>) =>
    report({ kind: "metric", name, args } as ThreadReport);
const metrics: RunMetrics = {
  claimed: forward("claimed"),
  released: forward("released"),
  leases: forward("leases"),
  swept: forward("swept"),
  queueTimeouts: forward("queueTimeouts"),
  cancelled: forward("cancelled"),
};

/**
 * The pool's side of the event bus: writes go to the HTTP thread; cancels
 * and wake-ups, delivered here as messages, reach the pool through the
 * in-process bus's own listeners.
 */
class ThreadBus extends MemoryEventBus {
  override publish(runId: string, event: string, data: unknown, attempt?: number, threadId?: string): void {
    report({ kind: "event", runId, event, data, ...(attempt === undefined ? {} : { attempt }), ...(threadId === undefined ? {} : { threadId }) });
  }
  override end(runId: string, retainMs: number): void {
    report({ kind: "end", runId, retainMs });
  }
  // eslint-disable-next-line require-yield
  override async *subscribe(): AsyncIterable<RunEvent> {
    throw new Error("Streams are read on the HTTP thread, not in an execution thread.");
  }
  // eslint-disable-next-line require-yield
  override async *subscribeThread(): AsyncIterable<ThreadEvent> {
    throw new Error("Streams are read on the HTTP thread, not in an execution thread.");
  }
  override async has(): Promise<boolean> {
    throw new Error("Streams are read on the HTTP thread, not in an execution thread.");
  }
}

/** The root of the HTTP thread's API (its URL and mount prefix), once it listens (its port is 0 until then). */
async function apiUrl(): Promise<string> {
  const port = new Int32Array(data.api.port);
  // Atomics.waitAsync is in Node 20, not in the ES2023 lib this project compiles against.
  const waitAsync = (Atomics as unknown as { waitAsync(this: void, a: Int32Array, i: number, v: number): { value: unknown } }).waitAsync;
  while (Atomics.load(port, 0) === 0) await waitAsync(port, 0, 0).value;
  return `http://${data.api.host}:${Atomics.load(port, 0)}${data.api.prefix}`;
}

async function main(): Promise<void> {
  // As on the HTTP thread, before graphs load; "in-process" here is the HTTP thread, over loopback.
  registerSdkLogger(logger);
  registerLoopbackFetch(fetchVia(apiUrl));
  // This thread's own SDK (the API's globals are per thread), from the same OTEL_* variables (docs/tracing.md).
  const tracing = await startTracing();
  const backend = createSqliteBackend({ path: data.databasePath, busyTimeoutMs: data.busyTimeoutMs, writeLock: data.writeLock, clock: systemClock });
  const bus = new ThreadBus();
  let pool: WorkerPool;
  try {
    const registry = new GraphRegistry(data.graphs, data.baseDir, data.agentPool);
    await registry.loadAll();
    // Never a project's own checkpointer: such projects execute on the HTTP thread (server.ts).
    pool = new WorkerPool(
      {
        queue: backend.runs,
        bus,
        registry,
        assistants: backend.assistants,
        checkpointer: backend.checkpointer,
        store: new ItemsStore(backend.items, { index: await storeIndexFrom(data.baseDir, data.store), ttl: storeTtlSettings(data.store), ...data.storeLimits }),
        logger,
        metrics,
        onFinished: async (run, outcome, times) => {
          if (run.kwargs.webhook) report({ kind: "finished", run, outcome, times });
        },
      },
      { ...data.pool, sweepOwnOnly: true },
    );
  } catch (error) {
    await backend.close();
    await tracing.close();
    post({ type: "failed", message: coerceError(error).message });
    return;
  }

  port.on("message", (message: ToThread) => {
    switch (message.type) {
      case "cancel":
        bus.signalCancel(message.runId, message.action);
        break;
      case "work":
        bus.signalWork();
        break;
      case "sync":
        flush();
        post({ type: "synced", id: message.id });
        break;
      case "close":
        void pool
          .close(message.graceMs)
          .catch((error: unknown) => logger.error("thread:close-failed", { error: coerceError(error).message }))
          .finally(async () => {
            await backend.close();
            await tracing.close().catch((error: unknown) => logger.warn("thread:tracing-flush-failed", { error: coerceError(error).message }));
            flush();
            post({ type: "closed" });
            port.close();
          });
        break;
    }
  });
  pool.start();
  post({ type: "ready", owner: pool.owner });
}

await main();
