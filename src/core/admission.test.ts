/** Where a run's priority comes from (docs/scheduling.md, "Priorities"). */
import { describe, expect, it } from "vitest";
import { CRON_PRIORITY, MAX_PRIORITY, MIN_PRIORITY, runPriority } from "./admission.ts";

describe("runPriority", () => {
  it("takes the request's field, else the run's metadata, else the assistant's, else 0", () => {
    expect(runPriority(3, { priority: 9 }, { priority: 7 })).toBe(3);
    expect(runPriority(undefined, { priority: 9 }, { priority: 7 })).toBe(9);
    expect(runPriority(undefined, {}, { priority: 7 })).toBe(7);
    expect(runPriority(undefined, {}, {})).toBe(0);
    // A request's 0 is a choice, not an absence.
    expect(runPriority(0, { priority: 9 }, {})).toBe(0);
  });

  it("clamps metadata integers into bounds and ignores other metadata values", () => {
    expect(runPriority(undefined, { priority: 1_000 }, {})).toBe(MAX_PRIORITY);
    expect(runPriority(undefined, { priority: -1_000 }, {})).toBe(MIN_PRIORITY);
    for (const value of ["high", 1.5, null, true, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(runPriority(undefined, { priority: value }, { priority: 4 }), String(value)).toBe(4);
    }
  });

  it("puts crons below interactive runs", () => {
    expect(CRON_PRIORITY).toBeLessThan(runPriority(undefined, {}, {}));
    expect(CRON_PRIORITY).toBeGreaterThanOrEqual(MIN_PRIORITY);
  });
});
