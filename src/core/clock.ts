/** Time, injected so tests can control it. */
export interface Clock {
  nowMs(): number;
}
export const systemClock: Clock = { nowMs: () => Date.now() };
export const isoFromMs = (ms: number): string => new Date(ms).toISOString();
