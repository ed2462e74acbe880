import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { WriteLock } from "./write-lock.ts";

const ENTRY = new URL("../../../test/fixtures/threads/write-lock-worker.js", import.meta.url);

/** Runs `threads` threads that each add 1 to a shared counter `rounds` times, non-atomically; returns the final count. */
async function race(threads: number, rounds: number, lock: SharedArrayBuffer | null): Promise<number> {
  const counter = new SharedArrayBuffer(4);
  await Promise.all(
    Array.from({ length: threads }, () => {
      const worker = new Worker(ENTRY, { workerData: { lock, counter, rounds } });
      return new Promise<void>((resolve, reject) => {
        worker.once("message", () => void worker.terminate().then(() => resolve()));
        worker.once("error", reject);
      });
    }),
  );
  return new Int32Array(counter)[0]!;
}

describe("WriteLock", () => {
  it("lets one thread at a time through: no increment of four racing threads is lost", async () => {
    expect(await race(4, 5_000, WriteLock.buffer())).toBe(20_000);
  });

  it("is reentrant within a thread, and free again afterwards", () => {
    const lock = new WriteLock(WriteLock.buffer());
    expect(lock.hold(() => lock.hold(() => 7))).toBe(7);
    expect(() => lock.hold(() => {
      throw new Error("inside");
    })).toThrow("inside");
    expect(lock.hold(() => "again")).toBe("again");
  });
});
