/**
 * The cron scheduler (docs/crons.md): in every process that executes runs
 * (embedded, `--role worker|all`). It sleeps until the earliest next fire
 * time of any cron, fires what is due, and looks again. It wakes early when
 * a cron changes in this process, and on the bus's work signal (any
 * process's run creation, cron change, in scale-out through Redis), and at
 * the latest every `pollMs`, so a cron created elsewhere is never missed.
 *
 * Several schedulers may fire at once: each scheduled time is claimed in
 * the database with its run, so only one of them creates it.
 */
import type { Clock } from "../core/clock.ts";
import type { CronFireOutcome, CronService } from "../core/cron-service.ts";
import type { Logger } from "../core/logger.ts";

export interface CronSchedulerOptions {
  /** Longest sleep between two looks at the crons, in ms. */
  pollMs: number;
  /** Wake-ups closer together than this are merged into one look, in ms (default 100). */
  debounceMs?: number;
}

/**
 * After a look failed (the database did not answer), or when crons are
 * still due after a look (their fires failed and are to be retried, or
 * another scheduler holds them), the next look comes this much later
 * instead of at once.
 */
export const RETRY_MS = 1_000;

export class CronScheduler {
  readonly #crons: Pick<CronService, "fireDue" | "nextDueMs">;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #options: Required<CronSchedulerOptions>;
  #timer: NodeJS.Timeout | undefined;
  #looking: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #wakeTimer: NodeJS.Timeout | undefined;

  constructor(crons: Pick<CronService, "fireDue" | "nextDueMs">, clock: Clock, logger: Logger, options: CronSchedulerOptions) {
    this.#crons = crons;
    this.#clock = clock;
    this.#logger = logger;
    this.#options = { debounceMs: 100, ...options };
  }

  /** Starts looking (fires what is due now, then sleeps until the next time). */
  start(): void {
    this.#look();
  }

  /** Something may have changed the next fire time: look again soon (merged with other wake-ups). */
  wake(): void {
    if (this.#closed || this.#wakeTimer !== undefined) return;
    this.#wakeTimer = setTimeout(() => {
      this.#wakeTimer = undefined;
      this.#look();
    }, this.#options.debounceMs);
    this.#wakeTimer.unref();
  }

  /** Stops the timers and waits for a look in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#wakeTimer);
    await this.#looking;
  }

  #look(): void {
    if (this.#closed) return;
    if (this.#looking !== undefined) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#looking = this.#lookOnce().finally(() => {
      this.#looking = undefined;
      if (this.#again) {
        this.#again = false;
        this.#look();
      }
    });
  }

  #report(outcome: CronFireOutcome, nowMs: number): void {
    const fields = {
      cron_id: outcome.cron_id,
      scheduled_at: new Date(outcome.scheduled_ms).toISOString(),
      next_run_date: outcome.next_ms === null ? null : new Date(outcome.next_ms).toISOString(),
    };
    if (outcome.result === "fired") this.#logger.info("cron:fired", { ...fields, run_id: outcome.run_id, thread_id: outcome.thread_id, late_ms: nowMs - outcome.scheduled_ms });
    else if (outcome.result === "taken") this.#logger.debug("cron:fire-taken", { ...fields, reason: outcome.reason });
    else if (outcome.result === "retry") this.#logger.warn("cron:fire-failed", { ...fields, error: outcome.reason, retry_ms: RETRY_MS, detail: "the cron stays due and is tried again" });
    else this.#logger.warn("cron:fire-refused", { ...fields, error: outcome.reason, detail: "this scheduled time is skipped" });
  }

  async #lookOnce(): Promise<void> {
    let delay: number;
    try {
      // One cheap read when nothing is due (most wake-ups are other processes' run creations).
      let next = await this.#crons.nextDueMs();
      const now = this.#clock.nowMs();
      let fired = false;
      if (next !== null && next <= now) {
        for (const outcome of await this.#crons.fireDue(now)) this.#report(outcome, now);
        fired = true;
        next = await this.#crons.nextDueMs();
      }
      // A cron this look found due and left due (its fire is to be retried, or another scheduler holds
      // it) is looked at again after RETRY_MS, not at once, which would spin on the same crons.
      const sameDueSet = fired && next !== null && next <= now;
      delay = next === null ? this.#options.pollMs : Math.min(this.#options.pollMs, sameDueSet ? RETRY_MS : Math.max(0, next - this.#clock.nowMs()));
    } catch (error) {
      this.#logger.warn("cron:look-failed", { error: error instanceof Error ? error.message : String(error), retry_ms: RETRY_MS });
      delay = RETRY_MS;
    }
    if (this.#closed) return;
    this.#timer = setTimeout(() => this.#look(), delay);
    this.#timer.unref();
  }
}
