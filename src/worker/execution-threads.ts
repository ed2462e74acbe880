/**
 * Execution threads (embedded mode): graphs run in worker threads, each
 * with a WorkerPool on its own SQLite connection, while this thread serves
 * HTTP. One event loop no longer carries both, so a busy HTTP side does not
 * delay graphs and the other way round (docs/architecture.md).
 *
 * This side applies what the threads report (events to the in-process bus,
 * logs to the logger, webhooks), forwards cancels and wake-ups to them,
 * restarts a thread that dies, and closes them gracefully.
 */
import { Worker } from "node:worker_threads";
import { coerceError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { RunMetrics } from "../core/metrics.ts";
import type { AttemptTimes, EventBus, RunOutcome } from "../core/ports.ts";
import type { Run, RunEvent } from "../core/types.ts";
import type { FromThread, ThreadData, ThreadReport, ToThread } from "./thread-protocol.ts";

export interface ExecutionThreadsOptions {
  count: number;
  /** What every thread is started with (its index is added). */
  data: Omit<ThreadData, "index">;
  /** The in-process bus the HTTP side reads; threads' events are appended to it. */
  bus: EventBus;
  logger: Logger;
  /** Sends a finished run's webhook (called here, not in the thread). */
  onFinished: (run: Run, outcome: RunOutcome, times: AttemptTimes) => Promise<void>;
  /** A thread died: hand its runs back to the queue (its lease owner is given). */
  onThreadLost: (owner: string) => Promise<void>;
  /** Any thread ended, for whatever reason (its `threadId`): free what it may still hold. */
  onThreadEnded: (threadId: number) => void;
  /** Where the threads' pools' claims, releases, leases and sweeps are counted (they report them here). */
  metrics?: RunMetrics;
}

interface Handle {
  index: number;
  worker: Worker;
  owner: string | undefined;
  /** Resolvers of `sync` barriers this thread has not answered yet. */
  syncs: Map<number, () => void>;
  /** False once the thread has exited (until a new one takes its index). */
  alive: boolean;
  closed: Promise<void>;
  /** Runs its pool holds now: claims minus releases it reported (metrics' busy slots). */
  busy: number;
}

const ENTRY = new URL("../execution-thread.js", import.meta.url);
/** A thread that dies unexpectedly is started again after this pause. */
const RESTART_DELAY_MS = 1_000;

export class ExecutionThreads {
  readonly #options: ExecutionThreadsOptions;
  readonly #handles: Handle[] = [];
  readonly #unsubscribe: (() => void)[] = [];
  #closing = false;
  #closed: Promise<void> | undefined;
  #syncId = 0;
  #workQueued = false;

  private constructor(options: ExecutionThreadsOptions) {
    this.#options = options;
  }

  /** Starts every thread and resolves once each has loaded the graphs and started its pool. */
  static async start(options: ExecutionThreadsOptions): Promise<ExecutionThreads> {
    const threads = new ExecutionThreads(options);
    try {
      await Promise.all(Array.from({ length: options.count }, (_, index) => threads.#spawn(index)));
    } catch (error) {
      await threads.close(0);
      throw error;
    }
    threads.#unsubscribe.push(
      options.bus.onCancel((runId, action) => threads.#broadcast({ type: "cancel", runId, action })),
      options.bus.onWork(() => threads.#queueWork()),
    );
    return threads;
  }

  get count(): number {
    return this.#handles.length;
  }

  /** Runs a burst of creates asks for once, not once per run. */
  #queueWork(): void {
    if (this.#workQueued) return;
    this.#workQueued = true;
    queueMicrotask(() => {
      this.#workQueued = false;
      this.#broadcast({ type: "work" });
    });
  }

  #broadcast(message: ToThread): void {
    for (const handle of this.#handles) handle.worker.postMessage(message);
  }

  #spawn(index: number): Promise<void> {
    const { logger } = this.#options;
    const worker = new Worker(ENTRY, { workerData: { ...this.#options.data, index } satisfies ThreadData });
    let markClosed!: () => void;
    const handle: Handle = { index, worker, owner: undefined, syncs: new Map(), alive: true, closed: new Promise((resolve) => (markClosed = resolve)), busy: 0 };
    this.#handles[index] = handle;
    return new Promise<void>((resolveStart, rejectStart) => {
      let started = false;
      worker.on("message", (message: FromThread) => {
        switch (message.type) {
          case "reports":
            for (const report of message.reports) this.#apply(report, handle);
            break;
          case "synced":
            handle.syncs.get(message.id)?.();
            handle.syncs.delete(message.id);
            break;
          case "ready":
            handle.owner = message.owner;
            started = true;
            logger.debug("thread:started", { thread: index, owner: message.owner });
            resolveStart();
            break;
          case "failed":
            rejectStart(new Error(message.message));
            break;
          case "closed":
            markClosed();
            break;
        }
      });
      worker.on("error", (error) => {
        logger.error("thread:crashed", { thread: index, owner: handle.owner, error: error.message });
        if (!started) rejectStart(error);
      });
      worker.on("exit", (code) => {
        handle.alive = false;
        handle.busy = 0;
        // It may have ended inside a write (terminated, out of memory): locks it held go.
        this.#options.onThreadEnded(worker.threadId);
        markClosed();
        for (const resolve of handle.syncs.values()) resolve();
        handle.syncs.clear();
        if (!started) rejectStart(new Error(`execution thread ${index} exited with code ${code} while starting`));
        if (this.#closing || !started) return;
        // Its runs are requeued at once (C3), and the thread is started again.
        logger.error("thread:exited", { thread: index, owner: handle.owner, code, detail: `its runs are requeued; restarting in ${RESTART_DELAY_MS} ms` });
        if (handle.owner !== undefined) {
          this.#options.onThreadLost(handle.owner).catch((error: unknown) => logger.error("thread:requeue-failed", { thread: index, error: coerceError(error).message }));
        }
        setTimeout(() => {
          if (this.#closing) return;
          this.#spawn(index).catch((error: unknown) => logger.error("thread:restart-failed", { thread: index, error: coerceError(error).message }));
        }, RESTART_DELAY_MS).unref();
      });
    });
  }

  /** Worker slots busy in all threads now (metrics). */
  busySlots(): number {
    return this.#handles.reduce((sum, handle) => sum + handle.busy, 0);
  }

  #apply(report: ThreadReport, handle: Handle): void {
    const { bus, logger } = this.#options;
    switch (report.kind) {
      case "event":
        bus.publish(report.runId, report.event, report.data, report.attempt, report.threadId);
        break;
      case "end":
        bus.end(report.runId, report.retainMs);
        break;
      case "log":
        logger[report.level](report.msg, report.fields);
        break;
      case "finished":
        this.#options.onFinished(report.run, report.outcome, report.times).catch((error: unknown) =>
          logger.warn("run:webhook-failed", { run_id: report.run.run_id, error: coerceError(error).message }),
        );
        break;
      case "metric":
        if (report.name === "claimed") handle.busy += 1;
        else if (report.name === "released") handle.busy = Math.max(0, handle.busy - 1);
        (this.#options.metrics?.[report.name] as ((...args: unknown[]) => void) | undefined)?.(...report.args);
        break;
    }
  }

  /** Resolves once every report the threads sent before this call has been applied here. */
  async sync(): Promise<void> {
    const id = ++this.#syncId;
    await Promise.all(
      // A thread that died has nothing in flight: its reports arrived before its exit.
      this.#handles.filter((handle) => handle.alive).map(
        (handle) =>
          new Promise<void>((resolve) => {
            handle.syncs.set(id, resolve);
            handle.worker.postMessage({ type: "sync", id } satisfies ToThread);
          }),
      ),
    );
  }

  /** Stops claiming; running runs get `graceMs` to finish, the rest are handed back. Once. */
  close(graceMs: number): Promise<void> {
    return (this.#closed ??= this.#close(graceMs));
  }

  async #close(graceMs: number): Promise<void> {
    this.#closing = true;
    for (const off of this.#unsubscribe) off();
    await Promise.all(
      this.#handles.map(async (handle) => {
        handle.worker.postMessage({ type: "close", graceMs } satisfies ToThread);
        let timer: NodeJS.Timeout | undefined;
        // A thread stuck in a synchronous loop cannot answer: stop it anyway.
        await Promise.race([handle.closed, new Promise((resolve) => (timer = setTimeout(resolve, graceMs + 10_000)))]);
        clearTimeout(timer);
        await handle.worker.terminate();
      }),
    );
  }
}

/**
 * The HTTP side's bus with execution threads: as the in-process bus, except
 * that before saying a run has no events it waits until the threads' reports
 * in flight have arrived (a run may have finished in the database a moment
 * before its events reach this thread).
 */
export function busWithThreads(bus: EventBus, threads: () => ExecutionThreads | undefined): EventBus {
  return {
    publish: (runId, event, data, attempt, threadId) => bus.publish(runId, event, data, attempt, threadId),
    end: (runId, retainMs) => bus.end(runId, retainMs),
    subscribe: (runId: string, afterId: string | undefined, signal: AbortSignal): AsyncIterable<RunEvent> => bus.subscribe(runId, afterId, signal),
    subscribeThread: (threadId, afterId, signal) => bus.subscribeThread(threadId, afterId, signal),
    // The head once the threads' reports in flight have arrived, so it is as of now; a thread busy in a
    // graph's synchronous code answers late, and the head is then taken as it is after a second.
    async threadLogHead(threadId) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([threads()?.sync(), new Promise((resolve) => (timer = setTimeout(resolve, 1_000)))]).finally(() => clearTimeout(timer));
      return bus.threadLogHead(threadId);
    },
    async has(runId) {
      if (await bus.has(runId)) return true;
      await threads()?.sync();
      return bus.has(runId);
    },
    signalCancel: (runId, action) => bus.signalCancel(runId, action),
    onCancel: (listener) => bus.onCancel(listener),
    signalWork: () => bus.signalWork(),
    onWork: (listener) => bus.onWork(listener),
    // The HTTP thread's own in-memory bus: waits trust it as they trust any healthy bus.
    healthy: () => bus.healthy?.() ?? false,
    close: () => bus.close(),
  };
}
