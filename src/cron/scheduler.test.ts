/**
 * The scheduler's timing (docs/crons.md, "Exactly once"): crons a look
 * found due and left due (fires to retry, or held by another scheduler)
 * are looked at again after a backoff, not at once in a loop.
 */
import { describe, expect, it } from "vitest";
import type { CronFireOutcome } from "../core/cron-service.ts";
import { createLogger } from "../core/logger.ts";
import { CronScheduler, RETRY_MS } from "./scheduler.ts";

const quiet = createLogger({ level: "error", format: "json", write: () => {} });

describe("cron scheduler", () => {
  it("backs off when the crons it fired are still due, instead of spinning on them", async () => {
    let looks = 0;
    let secondLook!: () => void;
    const second = new Promise<void>((resolve) => (secondLook = resolve));
    const stuck: CronFireOutcome = { cron_id: "c", scheduled_ms: 0, next_ms: 0, result: "retry", reason: "database busy" };
    const crons = {
      nextDueMs: async () => 0,
      fireDue: async () => {
        if (++looks === 2) secondLook();
        return [stuck];
      },
    };
    const scheduler = new CronScheduler(crons, { nowMs: () => Date.now() }, quiet, { pollMs: 10_000, debounceMs: 10 });
    const started = Date.now();
    scheduler.start();
    await second;
    const elapsed = Date.now() - started;
    await scheduler.close();
    // The second look came a backoff after the first, not within milliseconds.
    expect(elapsed).toBeGreaterThanOrEqual(RETRY_MS - 50);
  });
});
