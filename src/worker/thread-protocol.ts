/**
 * Messages between the HTTP thread and an execution thread (embedded mode
 * with `executionThreads` > 0). The execution thread owns a WorkerPool on
 * its own SQLite connection; what it would have told the in-process event
 * bus, logger and webhook sender travels here instead, in batches.
 */
import type { GraphSource } from "../core/graphs.ts";
import type { LogLevel } from "../core/logger.ts";
import type { RunMetrics } from "../core/metrics.ts";
import type { AttemptTimes, RunOutcome } from "../core/ports.ts";
import type { ProjectStoreSection } from "../core/store-index.ts";
import type { StoreLimits } from "../core/store-engine.ts";
import type { CancelAction, Run } from "../core/types.ts";
import type { WorkerPoolOptions } from "./worker-pool.ts";

/** What an execution thread is started with (`workerData`). */
export interface ThreadData {
  index: number;
  /** The SQLite file the HTTP thread opened and migrated. */
  databasePath: string;
  busyTimeoutMs: number;
  /** The process's SQLite write lock, shared with the HTTP thread. */
  writeLock: SharedArrayBuffer;
  graphs: GraphSource[];
  baseDir: string;
  /** langgraph.json's `store` section: the thread loads the same index and TTL settings for its graphs' store. */
  store: ProjectStoreSection | null;
  /** The store's limits from the server's options (the embedding timeout). */
  storeLimits: StoreLimits;
  /** Caps of the thread's own agent pool (docs/agent-pools.md). */
  agentPool: { perUser: number; max: number };
  /** This server over loopback, for a URL-less `new Client()` in a graph: its port is 0 until the HTTP thread listens; `prefix` is http.mount_prefix. */
  api: { host: string; port: SharedArrayBuffer; prefix: string };
  logLevel: LogLevel;
  pool: WorkerPoolOptions;
}

/** One thing the execution thread reports; several travel in one batch. */
export type ThreadReport =
  | { kind: "event"; runId: string; event: string; data: unknown; attempt?: number; threadId?: string }
  | { kind: "end"; runId: string; retainMs: number }
  | { kind: "log"; level: LogLevel; msg: string; fields: Record<string, unknown> | undefined }
  /** A run with a webhook finished: the HTTP thread sends it (relative URLs go to the project's app there). */
  | { kind: "finished"; run: Run; outcome: RunOutcome; times: AttemptTimes }
  /** A call on the thread's pool's metrics recorder, replayed on the HTTP thread's (docs/metrics.md). */
  | MetricReport;

/** One `RunMetrics` call: its method and arguments. */
export type MetricReport = { [K in keyof RunMetrics]: { kind: "metric"; name: K; args: Parameters<RunMetrics[K]> } }[keyof RunMetrics];

export type FromThread =
  | { type: "ready"; owner: string }
  | { type: "failed"; message: string }
  | { type: "reports"; reports: ThreadReport[] }
  /** Every report sent before this one has been posted (answer to `sync`). */
  | { type: "synced"; id: number }
  | { type: "closed" };

export type ToThread =
  | { type: "cancel"; runId: string; action: CancelAction }
  | { type: "work" }
  | { type: "sync"; id: number }
  | { type: "close"; graceMs: number };
