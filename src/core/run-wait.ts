/**
 * Waiting for a run's own answer (C4): from the bus's final event or the
 * durable record, whichever comes first, reading the record rarely while
 * the bus is healthy. RunService hands it runs the caller may read.
 */
import { BatonError, ErrorCode } from "./errors.ts";
import type { Clock } from "./clock.ts";
import type { EventBus, RunQueue } from "./ports.ts";
import type { Run } from "./types.ts";

export interface RunWaiterDeps {
  queue: RunQueue;
  bus: EventBus;
  clock: Clock;
  /** While the bus is not healthy, how often a wait reads the run's record; also how often it asks the bus. Default 1 s. */
  finalPollMs?: number | undefined;
  /** While the bus is healthy, how often (by `clock`) a wait reads the record anyway. Default SAFETY_POLL_MS. */
  safetyPollMs?: number | undefined;
}

/** What a wait answers: the run's final status and its output. */
export interface FinalAnswer {
  status: string;
  output: unknown;
}

/** The bus's side of a wait: its final event, or undefined once the bus ended (or failed) without one. */
interface BusWatch {
  answer: Promise<FinalAnswer | undefined>;
  ended: boolean;
}

export class RunWaiter {
  constructor(private readonly deps: RunWaiterDeps) {}

  /**
   * The run's own answer (C4), when it is final or gone; rejects when the
   * signal aborts. It comes from the bus's final event, or from the durable
   * record, whichever comes first. The record is read at once, and then
   * while the bus is not healthy every `finalPollMs` (a bus that lost the
   * end: a restart, a Redis outage), but while it is healthy only every
   * `safetyPollMs` (an end lost without an outage: a worker that died
   * between recording and publishing it), so that many waiting clients cost
   * the database little. A run that is gone from the record was erased by a
   * rollback, or finished on a temporary thread that was deleted with it;
   * the bus, which is subscribed before the first read, tells which.
   */
  async waitFinal(runId: string, signal: AbortSignal): Promise<FinalAnswer> {
    const local = new AbortController();
    const stop = () => local.abort();
    signal.addEventListener("abort", stop, { once: true });
    try {
      const bus = this.#watchBus(runId, local.signal);
      /** When the record was last read; null: at the next chance. */
      let readAtMs: number | null = null;
      for (let first = true; ; first = false) {
        if (!first) {
          const answer = await this.#nextTick(bus, local.signal);
          if (answer !== undefined) return answer;
        }
        if (signal.aborted) throw new BatonError(ErrorCode.unavailable, "The client went away before the run finished.");
        if (readAtMs !== null && !this.#recordDue(bus, readAtMs)) continue;
        let run: Run | null;
        try {
          run = await this.deps.queue.get(runId);
        } catch {
          // The database is briefly away: the bus may still answer; read again at the next tick.
          readAtMs = null;
          continue;
        }
        readAtMs = this.deps.clock.nowMs();
        if (run === null) return (await this.#lastWord(bus, local.signal)) ?? rolledBack(runId);
        if (run.status !== "pending" && run.status !== "running") return { status: run.status, output: run.output };
      }
    } finally {
      signal.removeEventListener("abort", stop);
      local.abort();
    }
  }

  /** Subscribes to the run's events for its final one. */
  #watchBus(runId: string, signal: AbortSignal): BusWatch {
    const watch: BusWatch = { answer: Promise.resolve(undefined), ended: false };
    watch.answer = (async () => {
      try {
        for await (const event of this.deps.bus.subscribe(runId, undefined, signal)) {
          if (event.event === "__final__") return event.data as FinalAnswer;
        }
      } catch {
        // The bus failed: the durable record answers.
      }
      return undefined;
    })().then((answer) => {
      if (answer === undefined) watch.ended = true;
      return answer;
    });
    return watch;
  }

  /** The bus's answer if it comes within one tick (`finalPollMs`; a short pause once the bus has ended). */
  async #nextTick(bus: BusWatch, signal: AbortSignal): Promise<FinalAnswer | undefined> {
    if (bus.ended) {
      await abortableDelay(ENDED_POLL_MS, signal);
      return undefined;
    }
    return Promise.race([bus.answer, abortableDelay(this.deps.finalPollMs ?? 1_000, signal).then(() => undefined)]);
  }

  /** Whether a wait should read the record now (`readAtMs`: when it last did). */
  #recordDue(bus: BusWatch, readAtMs: number): boolean {
    if (bus.ended || !(this.deps.bus.healthy?.() ?? false)) return true;
    return this.deps.clock.nowMs() - readAtMs >= (this.deps.safetyPollMs ?? SAFETY_POLL_MS);
  }

  /** For a run gone from the record: the bus's final word (a rollback, or a deleted temporary thread's output), unless it lost it too. */
  async #lastWord(bus: BusWatch, signal: AbortSignal): Promise<FinalAnswer | undefined> {
    if (bus.ended) return undefined;
    return Promise.race([bus.answer, abortableDelay(GONE_GRACE_MS, signal).then(() => undefined)]);
  }
}

/** How long a wait for a run that vanished from the record waits for the bus's final word. */
const GONE_GRACE_MS = 3_000;
/**
 * While the bus is healthy, how often a wait reads the run's record anyway:
 * the bound on how late a wait answers when a run's final event was lost
 * without the bus noticing (a worker that died between recording its
 * outcome and publishing it).
 */
export const SAFETY_POLL_MS = 30_000;
/** How often a wait reads the record once the bus ended without a final event (the record is about to say). */
const ENDED_POLL_MS = 200;

const rolledBack = (runId: string) => ({
  status: "rolled_back",
  output: { __error__: { error: "RunRolledBack", message: `Run ${runId} was rolled back by a newer run on its thread and no longer exists.` } },
});

/** Resolves after `ms`, or at once when the signal aborts. */
function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
