/**
 * Time, injected so tests can control it.
 *
 * One clock source per process: every lease, claim, sweep and schedule time
 * a process writes or compares comes from the `Clock` it was given (the
 * system clock in production), in every thread (the Postgres lease thread
 * reads it as the system clock plus this clock's offset from it). Across
 * hosts the clocks must agree: a scale-out process measures its clock
 * against the database's at start and at every sweep, and refuses to start
 * (or stops taking work) when they differ by more than `clockSkewLimitMs`
 * (docs/operations.md, "Clocks").
 */
export interface Clock {
  nowMs(): number;
}
export const systemClock: Clock = { nowMs: () => Date.now() };
export const isoFromMs = (ms: number): string => new Date(ms).toISOString();

/**
 * The largest difference tolerated between a process's clock and the
 * database's: a quarter of the lease. Two processes within it differ by at
 * most half a lease, so a lease one of them took or renewed is never judged
 * expired by the other sooner than half a lease later (a renewal period
 * shorter than that keeps live runs held), nor later than one and a half
 * leases after (a dead worker's runs come back).
 */
export const clockSkewLimitMs = (leaseMs: number): number => Math.floor(leaseMs / 4);

/** One comparison of this process's clock with a reference (the database's). */
export interface ClockSample {
  /** Reference time minus this clock's time at the middle of the round trip: negative when this clock is ahead. */
  offsetMs: number;
  /** Half the round trip: the true offset lies within `offsetMs` ± this. */
  uncertaintyMs: number;
}

/** Whether a sample shows the clock off by more than `limitMs` for certain (its round trip cannot explain it). */
export const beyondLimit = (sample: ClockSample, limitMs: number): boolean => Math.abs(sample.offsetMs) - sample.uncertaintyMs > limitMs;

/** "12.3 s ahead of the database's" or "… behind …", for messages. */
export function describeSkew(sample: ClockSample, reference: string): string {
  const seconds = (Math.abs(sample.offsetMs) / 1000).toFixed(1);
  return `${seconds} s ${sample.offsetMs < 0 ? "ahead of" : "behind"} ${reference} (measured to within ±${Math.ceil(sample.uncertaintyMs)} ms)`;
}
