/** The store sweeper's timing and its manners on the event loop (StoreSweeper). */
import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.ts";
import type { StoreItems } from "./ports.ts";
import { StoreSweeper } from "./store-engine.ts";

const quiet = createLogger({ level: "error", format: "json", write: () => undefined });

/** A backend whose sweep deletes `batches` in turn (500 is a full batch), recording each call. */
function sweepable(batches: number[], onSweep: (call: number) => void = () => undefined): StoreItems {
  let call = 0;
  return {
    sweepExpired: async () => {
      onSweep(call);
      return batches[call++] ?? 0;
    },
  } as unknown as StoreItems;
}

describe("StoreSweeper", () => {
  it("sweeps first after a random part of the interval, not a whole interval", async () => {
    let resolve: (ms: number) => void = () => undefined;
    const swept = new Promise<number>((r) => (resolve = r));
    const started = Date.now();
    // An hour's interval; the random draw places the first sweep at its start.
    const sweeper = new StoreSweeper(sweepable([0], () => resolve(Date.now() - started)), 60, quiet, () => 0);
    try {
      expect(await swept).toBeLessThan(1_000);
    } finally {
      await sweeper.close();
    }
  });

  it("yields to the event loop between batches, so waiting requests go first", async () => {
    let servedBeforeSecondBatch: boolean | undefined;
    let served = false;
    const items = sweepable([500, 500, 3], (call) => {
      if (call === 0) setImmediate(() => (served = true));
      if (call === 1) servedBeforeSecondBatch = served;
    });
    // Never fires on its own within the test (0.99 of an hour).
    const sweeper = new StoreSweeper(items, 60, quiet, () => 0.99);
    try {
      expect(await sweeper.sweep()).toBe(1_003);
      expect(servedBeforeSecondBatch).toBe(true);
    } finally {
      await sweeper.close();
    }
  });
});
