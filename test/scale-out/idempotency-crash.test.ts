/**
 * An API process SIGKILLed after it claimed an Idempotency-Key and before
 * it answered: the key must not stay locked for its whole TTL (24 h), and
 * the run must be created once. The test holds a lock on `runs`, so the
 * first process claims the key and then waits on its run's insert; it is
 * killed there, and its transaction dies with it. A retry on another API
 * process takes the key over once the claim is
 * BATON_IDEMPOTENCY_CLAIM_TIMEOUT_MS old (1 s here) and creates the run.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type Cluster } from "../helpers/cluster.ts";
import { until } from "../helpers/server.ts";

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster("idempotency-crash", { BATON_IDEMPOTENCY_CLAIM_TIMEOUT_MS: "1000" });
});
afterAll(async () => {
  await cluster?.close();
});

describe("an API process killed between claiming an Idempotency-Key and answering", () => {
  it("a retry on another API process takes the key over after the claim timeout, and the run is created once", async () => {
    // No worker yet: its claims would wait on the test's lock too, and be taken for the API's insert.
    const [first, second] = await Promise.all([cluster.start("api"), cluster.start("api")]);
    const thread = await second.client.threads.create();
    const key = randomUUID();
    const create = (url: string) =>
      fetch(`${url}/threads/${thread.thread_id}/runs`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": key },
        body: JSON.stringify({ assistant_id: "echo", input: { messages: [{ role: "user", content: "once" }] } }),
      });
    const db = new pg.Client({ connectionString: cluster.database.url });
    await db.connect();
    try {
      await db.query("BEGIN");
      await db.query("LOCK TABLE runs IN EXCLUSIVE MODE");
      const killed = create(first.url).then(
        () => "answered",
        () => "killed",
      );
      // The first process has claimed the key and waits on the lock to insert its run.
      await until(async () => ((await db.query("SELECT 1 FROM pg_locks WHERE relation = 'runs'::regclass AND NOT granted")).rowCount! > 0 ? true : undefined), "the run insert to wait");
      expect((await db.query("SELECT response FROM idempotency_keys WHERE key = $1", [key])).rows).toEqual([{ response: null }]);
      await first.stop("SIGKILL");
      expect(await killed).toBe("killed");
      await db.query("ROLLBACK");
    } finally {
      await db.end();
    }
    await cluster.start("worker");

    // The retry waits for the claim to time out, takes it over and creates the run; a further retry answers it.
    const retried = await create(second.url);
    expect(retried.status).toBe(200);
    const run = (await retried.json()) as { run_id: string };
    const again = (await (await create(second.url)).json()) as { run_id: string };
    expect(again.run_id).toBe(run.run_id);
    const runs = await second.client.runs.list(thread.thread_id);
    expect(runs.map((r) => r.run_id)).toEqual([run.run_id]);
    const output = (await second.client.runs.join(thread.thread_id, run.run_id)) as { messages: { content: string }[] };
    expect(output.messages.map((m) => m.content)).toEqual(["once", "echo: once"]);
  });
});
