import { once } from "node:events";
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

  it("can be freed of a thread that was terminated while holding it", async () => {
    const buffer = WriteLock.buffer();
    const worker = new Worker(ENTRY, { workerData: { lock: buffer, counter: new SharedArrayBuffer(4), rounds: 0, hang: true } });
    await once(worker, "message");
    const id = worker.threadId;
    await worker.terminate();
    // A terminated thread ran no finally: the lock still names it.
    expect(new Int32Array(buffer)[0]).toBe(id + 1);
    WriteLock.releaseHeldBy(buffer, id + 1000);
    expect(new Int32Array(buffer)[0]).toBe(id + 1);
    WriteLock.releaseHeldBy(buffer, id);
    expect(new WriteLock(buffer).hold(() => "mine")).toBe("mine");
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
