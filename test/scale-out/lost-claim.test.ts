/**
 * A claim whose answer was lost (the connection dropped after Postgres
 * committed it) leaves the run leased to a worker that never heard of it.
 * Before claiming again the queue hands such runs back (they are found by
 * the claim's stamp, the run's updated_at). A cancel of the run meanwhile
 * must not hide it: flagging a running run for cancel leaves updated_at as
 * the claim stamped it, or the run would stay running forever, its lease
 * renewed by the worker's lease thread (a defect found in review).
 *
 * The connection is cut by a TCP proxy between the queue and Postgres that
 * drops the connection carrying the claim as its answer arrives.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresBackend } from "../../src/backends/postgres/index.ts";
import type { Backend } from "../../src/core/ports.ts";
import { ManualClock, newRun } from "../../src/testing/index.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";

/** Forwards to Postgres; `dropClaimAnswer()` arms it to cut the next connection that sends a claim, once the answer comes back. */
class CuttingProxy {
  readonly server: net.Server;
  #armed = false;
  cut = 0;
  constructor(target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(target);
      let claimSent = false;
      client.on("data", (chunk) => {
        if (this.#armed && chunk.includes("baton_claim")) claimSent = true;
        upstream.write(chunk);
      });
      upstream.on("data", (chunk) => {
        if (claimSent) {
          // Postgres has answered (and committed): the answer never arrives.
          this.#armed = false;
          claimSent = false;
          this.cut += 1;
          client.destroy();
          upstream.destroy();
          return;
        }
        client.write(chunk);
      });
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("error", close);
      upstream.on("error", close);
      client.on("close", close);
      upstream.on("close", close);
    });
  }
  dropClaimAnswer(): void {
    this.#armed = true;
  }
  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return (this.server.address() as net.AddressInfo).port;
  }
}

let db: TestDatabase;
let proxy: CuttingProxy;
let backend: Backend;
const clock = new ManualClock(1_000_000);

beforeAll(async () => {
  db = await freshDatabase("lost_claim");
  const target = new URL(db.url);
  proxy = new CuttingProxy({ host: target.hostname, port: Number(target.port || 5432) });
  const port = await proxy.listen();
  const viaProxy = new URL(db.url);
  viaProxy.host = `127.0.0.1:${port}`;
  backend = await createPostgresBackend({ url: viaProxy.toString(), poolSize: 2, clock, migrate: true });
});
afterAll(async () => {
  await backend?.close();
  proxy?.server.close();
  await db?.drop();
});

describe("a claim whose answer was lost", () => {
  it("is handed back before the next claim, even when a cancel flagged the run meanwhile", async () => {
    await backend.runs.create(newRun("t-lost", "r-lost"));
    proxy.dropClaimAnswer();
    await expect(backend.runs.claim("w1", 60_000)).rejects.toMatchObject({ code: "unavailable" });
    expect(proxy.cut).toBe(1);
    // Committed: the run is running, leased to w1, which never got it.
    expect((await backend.runs.get("r-lost"))?.status).toBe("running");
    clock.advance(5);
    expect(await backend.runs.cancel(["r-lost"], "interrupt")).toEqual([{ run_id: "r-lost", was_running: true, thread_log: "t-lost", resumable: false }]);
    clock.advance(5);
    // The next claim first hands the lost claim back, then takes it: the worker sees the cancel and stops it.
    const again = await backend.runs.claim("w1", 60_000);
    expect(again).toMatchObject({ run_id: "r-lost", attempt: 2, status: "running" });
    expect(await backend.runs.cancelAction("r-lost")).toBe("interrupt");
  });
});
