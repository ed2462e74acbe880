/**
 * The thread TTL sweeper (docs/threads.md): every `sweep_interval_minutes`
 * (langgraph.json `checkpointer.ttl`, 5 by default, as on the official
 * server), each process that executes runs (embedded, `--role all` and
 * `--role worker`) deletes or prunes the threads whose TTL expired. Any
 * number of processes may sweep at once: the backend's sweep takes each
 * thread in one of them only (`Threads.sweepExpired`).
 */
import type { Logger } from "../core/logger.ts";
import type { Threads } from "../core/ports.ts";
import type { ThreadTtlPolicy, TtlStrategy, TtlSweep } from "../core/thread-ttl.ts";

/** `checkpointer.ttl` as langgraph.json gives it (already validated by src/config.ts). */
export interface CheckpointerTtlConfig {
  strategy?: TtlStrategy | null | undefined;
  default_ttl?: number | null | undefined;
  sweep_interval_minutes?: number | null | undefined;
  sweep_limit?: number | null | undefined;
}

/** The official server's defaults: a sweep every 5 minutes, at most 1,000 threads each. */
export const DEFAULT_SWEEP_INTERVAL_MINUTES = 5;
export const DEFAULT_SWEEP_LIMIT = 1_000;
/**
 * Threads pruned per transaction, so a large sweep holds its locks briefly:
 * 100 on Postgres; 20 on SQLite, where a transaction holds the one write
 * lock and runs on the event loop, so other requests wait for all of it.
 */
export const SWEEP_BATCH = { postgres: 100, sqlite: 20 } as const;
/** The longest delay a Node timer takes (a longer one would fire at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** The shortest interval: a tiny `sweep_interval_minutes` (tests use them) must not become a hot loop. */
const MIN_INTERVAL_MS = 100;

export function threadTtlPolicy(config: CheckpointerTtlConfig | null | undefined): ThreadTtlPolicy {
  const minutes = config?.default_ttl ?? null;
  return {
    default: minutes === null ? null : { strategy: config?.strategy ?? "delete", minutes },
    sweepIntervalMs: Math.min(MAX_TIMER_MS, Math.max(MIN_INTERVAL_MS, Math.round((config?.sweep_interval_minutes ?? DEFAULT_SWEEP_INTERVAL_MINUTES) * 60_000))),
    sweepLimit: config?.sweep_limit ?? DEFAULT_SWEEP_LIMIT,
  };
}

export interface ThreadTtlSweeperDeps {
  threads: Threads;
  logger: Logger;
  /** Threads per transaction (`SWEEP_BATCH`); default Postgres's. */
  batch?: number | undefined;
}

export class ThreadTtlSweeper {
  readonly #deps: ThreadTtlSweeperDeps;
  readonly #policy: ThreadTtlPolicy;
  #timer: NodeJS.Timeout | undefined;
  /** The sweep in progress: a process runs one at a time. */
  #current: Promise<TtlSweep> | undefined;
  #closed = false;

  constructor(deps: ThreadTtlSweeperDeps, policy: ThreadTtlPolicy) {
    this.#deps = deps;
    this.#policy = policy;
  }

  /** Sweeps now, then every interval, until `close`. */
  start(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#deps.logger.debug("threads:ttl-sweeper-started", { interval_ms: this.#policy.sweepIntervalMs, limit: this.#policy.sweepLimit });
    const tick = () => {
      void this.sweep().catch(() => undefined);
    };
    this.#timer = setInterval(tick, this.#policy.sweepIntervalMs);
    this.#timer.unref();
    tick();
  }

  /**
   * One sweep: up to the limit, in batches, until no expired thread is left
   * to take. Resolves what it deleted and pruned; a sweep already running
   * in this process is joined rather than doubled. Expiry is judged by the
   * database's time where processes share it (`Threads.sweepExpired`), or
   * as of `atMs` when given (tests: expiry without waiting or moving the
   * clock leases are judged by).
   */
  sweep(atMs?: number): Promise<TtlSweep> {
    if (atMs !== undefined) return this.#sweep(atMs);
    this.#current ??= this.#sweep(undefined).finally(() => (this.#current = undefined));
    return this.#current;
  }

  async #sweep(atMs: number | undefined): Promise<TtlSweep> {
    const done: TtlSweep = { deleted: [], pruned: [] };
    const size = this.#deps.batch ?? SWEEP_BATCH.postgres;
    try {
      while (!this.#closed) {
        const left = this.#policy.sweepLimit - done.deleted.length - done.pruned.length;
        if (left <= 0) break;
        const batch = await this.#deps.threads.sweepExpired(atMs, Math.min(size, left));
        done.deleted.push(...batch.deleted);
        done.pruned.push(...batch.pruned);
        if (batch.deleted.length + batch.pruned.length < Math.min(size, left)) break;
        // Let requests waiting on the event loop in between (on SQLite a batch is synchronous).
        await new Promise(setImmediate);
      }
    } catch (error) {
      this.#deps.logger.warn("threads:ttl-sweep-failed", { error: (error as Error).message, deleted: done.deleted.length, pruned: done.pruned.length });
      throw error;
    }
    if (done.deleted.length + done.pruned.length > 0) {
      this.#deps.logger.info("threads:ttl-swept", { deleted: done.deleted.length, pruned: done.pruned.length });
    }
    return done;
  }

  /** Stops the timer and waits for a sweep in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#current?.catch(() => undefined);
  }
}
