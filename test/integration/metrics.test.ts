/**
 * Issue 13, item 1: /metrics (docs/metrics.md). Runs are held on gates so
 * the queue has a known shape when it is scraped; the figures are compared
 * with the runs this file made: the cluster's queue gauges, the worker
 * slots, counter deltas (claims, outcomes, cancels, webhooks, requests),
 * histogram counts, route templates as labels and no id in any label.
 * Runs on every project: embedded with an execution thread (its counts are
 * forwarded to the HTTP thread), embedded inline, and scale-out.
 */
import { randomUUID } from "node:crypto";
import { createServer as createHttpServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gate } from "../fixtures/graphs/graphs.ts";
import { scrape, type Scrape } from "../helpers/metrics.ts";
import { freshDatabase } from "../helpers/postgres.ts";
import { human, SCALE_OUT, startGatedRun, startServer, type TestServer } from "../helpers/server.ts";

/** GET with an explicit Host header (fetch cannot set it). */
function getWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { headers: { host } }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on("error", reject);
    request.end();
  });
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

describe("/metrics", () => {
  let t: TestServer;
  let alice: Client;
  let bob: Client;
  let metricsUrl: string;
  beforeAll(async () => {
    // Two worker slots, so the third and later runs wait; users named by a header, for the per-user histogram.
    // Leases renewed every 100 ms, so held runs show renewals.
    t = await startServer({ workers: 2, userHeader: "x-user", webhookAllowPrivate: true, leaseRenewMs: 100 });
    alice = new Client({ apiUrl: t.url, defaultHeaders: { "x-user": "alice" } });
    bob = new Client({ apiUrl: t.url, defaultHeaders: { "x-user": "bob" } });
    metricsUrl = t.server.metricsUrl;
  });
  afterAll(async () => {
    await t?.close();
  });

  it("is served on the main port, in the text format, to any Host", async () => {
    expect(metricsUrl).toBe(`${t.url}/metrics`);
    const first = await scrape(metricsUrl);
    expect(first.value("baton_info", { role: "all", backend: SCALE_OUT ? "postgres" : "sqlite" })).toBe(1);
    expect(first.has("process_cpu_user_seconds_total")).toBe(true);
    // The Host check refuses unknown names on a loopback server, but not for /metrics (scrapers use addresses or service names).
    expect(await getWithHost(`${t.url}/assistants/search`, "evil.example")).toBe(403);
    expect(await getWithHost(metricsUrl, "evil.example")).toBe(200);
  });

  it("counts the queue, the slots and the outcomes of runs that queue, run, fail and are cancelled", async () => {
    const before = await scrape(metricsUrl);
    const names = { a: `m-${crypto.randomUUID()}`, b: `m-${crypto.randomUUID()}`, c: `m-${crypto.randomUUID()}`, d: `m-${crypto.randomUUID()}` };
    const gates = { a: gate(names.a), b: gate(names.b), c: gate(names.c), d: gate(names.d) };
    const ids: string[] = [];
    const start = async (client: Client, name: string, threadId?: string) => {
      const thread = threadId ?? (await client.threads.create()).thread_id;
      const run = await client.runs.create(thread, "gated", { input: human(`gate:${name}`) });
      ids.push(thread, run.run_id);
      return { thread, run };
    };

    // Alice's a and b take both slots; alice's c, bob's d and a second run on a's thread wait.
    const a = await start(alice, names.a);
    const b = await start(alice, names.b);
    await expect.poll(() => gates.a.entered).toBe(1);
    await expect.poll(() => gates.b.entered).toBe(1);
    const c = await start(alice, names.c);
    const d = await start(bob, names.d);
    const a2 = await start(alice, names.a, a.thread);

    // The queue is read from the database, cached for a second: poll until this shape shows.
    await expect
      .poll(async () => {
        const s = await scrape(metricsUrl);
        return [s.value("baton_queue_pending_runs"), s.value("baton_queue_running_runs"), s.value("lg_api_num_pending_runs"), s.value("lg_api_num_running_runs")];
      })
      .toEqual([3, 2, 3, 2]);
    const queued = await scrape(metricsUrl);
    expect(queued.value("baton_queue_pending_runs_by_graph", { graph_id: "gated" })).toBe(3);
    expect(queued.value("baton_queue_running_runs_by_graph", { graph_id: "gated" })).toBe(2);
    // Per user, as a histogram over users: alice has 2 pending (c, a2) and 2 running, bob 1 pending.
    expect(queued.value("baton_queue_users", { status: "pending" })).toBe(2);
    expect(queued.value("baton_queue_users", { status: "running" })).toBe(1);
    expect(queued.value("baton_queue_runs_per_user_bucket", { status: "pending", le: "1" })).toBe(1);
    expect(queued.value("baton_queue_runs_per_user_bucket", { status: "pending", le: "2" })).toBe(2);
    expect(queued.value("baton_queue_runs_per_user_bucket", { status: "running", le: "1" })).toBe(0);
    expect(queued.value("baton_queue_runs_per_user_bucket", { status: "running", le: "2" })).toBe(1);
    expect(queued.value("baton_queue_runs_per_user_sum", { status: "pending" })).toBe(3);
    expect(queued.value("baton_queue_runs_per_user_count", { status: "pending" })).toBe(2);
    expect(queued.value("baton_queue_oldest_pending_seconds")).toBeGreaterThanOrEqual(0);
    // This process's slots: both busy.
    expect(queued.value("baton_worker_slots_max")).toBe(2);
    expect(queued.value("baton_worker_slots_busy")).toBe(2);
    expect(queued.value("baton_worker_slots_free")).toBe(0);
    expect([queued.value("lg_api_workers_max"), queued.value("lg_api_workers_active"), queued.value("lg_api_workers_available")]).toEqual([2, 2, 0]);

    // Their leases are renewed while they are held; none is lost.
    await expect.poll(async () => (await scrape(metricsUrl)).value("baton_lease_renewals_total") - before.value("baton_lease_renewals_total")).toBeGreaterThanOrEqual(2);

    // A stream subscriber on b while it is held.
    const joined = (async () => {
      const events: string[] = [];
      for await (const chunk of alice.runs.joinStream(b.thread, b.run.run_id)) events.push(chunk.event);
      return events;
    })();
    await expect.poll(async () => (await scrape(metricsUrl)).value("baton_stream_subscribers")).toBe(1);

    // Cancel c while pending and a while running; then a2 and d take the slots.
    await alice.runs.cancel(c.thread, c.run.run_id, false, "interrupt");
    await alice.runs.cancel(a.thread, a.run.run_id, true, "interrupt");
    for (const g of Object.values(gates)) g.open();
    for (const r of [b, d, a2]) await alice.runs.join(r.thread, r.run.run_id);
    await joined;
    const failThread = (await bob.threads.create()).thread_id;
    const failed = await bob.runs.create(failThread, "fail", { input: human("fail") });
    ids.push(failThread, failed.run_id);
    await bob.runs.join(failThread, failed.run_id);
    expect((await bob.runs.get(failThread, failed.run_id)).status).toBe("error");

    await expect
      .poll(async () => {
        const s = await scrape(metricsUrl);
        return [s.value("baton_queue_pending_runs"), s.value("baton_queue_running_runs"), s.value("baton_stream_subscribers"), s.value("baton_worker_slots_busy")];
      })
      .toEqual([0, 0, 0, 0]);
    const after = await scrape(metricsUrl);
    const delta = (name: string, labels: Record<string, string> = {}) => after.value(name, labels) - before.value(name, labels);
    // Gated runs: a (interrupted while running), b, d and a2 (success); c never ran.
    expect(delta("baton_runs_claimed_total", { graph_id: "gated" })).toBe(4);
    expect(delta("baton_runs_claimed_total", { graph_id: "fail" })).toBe(1);
    expect(delta("baton_run_retries_total")).toBe(0);
    expect(delta("baton_leases_lost_total")).toBe(0);
    expect(delta("baton_lease_expiries_total")).toBe(0);
    expect(delta("baton_runs_finished_total", { graph_id: "gated", outcome: "success" })).toBe(3);
    expect(delta("baton_runs_finished_total", { graph_id: "gated", outcome: "interrupted" })).toBe(1);
    expect(delta("baton_runs_finished_total", { graph_id: "fail", outcome: "error" })).toBe(1);
    expect(delta("baton_run_duration_seconds_count", { graph_id: "gated", outcome: "success" })).toBe(3);
    expect(delta("baton_run_duration_seconds_count", { graph_id: "fail" })).toBe(1);
    expect(delta("baton_run_queue_wait_seconds_count", { graph_id: "gated" })).toBe(4);
    expect(delta("baton_run_queue_wait_seconds_count")).toBe(5);
    expect(delta("lg_api_run_queue_wait_time_1st_attempt_count")).toBe(5);
    expect(delta("lg_api_run_queue_wait_time_1st_attempt_bucket", { le: "+Inf" })).toBe(5);
    expect(delta("baton_run_cancels_total", { action: "interrupt", state: "pending" })).toBe(1);
    expect(delta("baton_run_cancels_total", { action: "interrupt", state: "running" })).toBe(1);
    expect(delta("baton_run_cancels_total", { action: "rollback" })).toBe(0);
    expect(delta("baton_stream_readers_dropped_total")).toBe(0);
    expect(after.value("baton_stream_buffered_bytes")).toBe(0);

    // HTTP requests by route template: 6 runs created on a thread (a, b, c, d, a2, fail).
    expect(delta("baton_http_requests_total", { method: "POST", route: "/threads/:thread_id/runs", status: "200" })).toBe(6);
    expect(delta("lg_api_http_requests_total", { method: "POST", path: "/threads/:thread_id/runs", status: "200" })).toBe(6);
    expect(delta("baton_http_request_duration_seconds_count", { method: "POST", route: "/threads/:thread_id/runs" })).toBe(6);
    expect(delta("lg_api_http_requests_latency_count", { method: "POST", path: "/threads/:thread_id/runs" })).toBe(6);
    expect(delta("baton_http_requests_total", { method: "POST", route: "/threads/:thread_id/runs/:run_id/cancel" })).toBe(2);

    // No id ever becomes a label: not the ones made here, not any.
    for (const sample of after.samples) {
      for (const value of Object.values(sample.labels)) {
        expect(value, `${sample.name} ${JSON.stringify(sample.labels)}`).not.toMatch(UUID);
        for (const id of ids) expect(value).not.toContain(id);
      }
    }
  });

  it("labels a request no route matches as unmatched, not by its path", async () => {
    const before = await scrape(metricsUrl);
    const path = `/no/such/${crypto.randomUUID()}`;
    expect((await fetch(`${t.url}${path}`)).status).toBe(404);
    const after = await scrape(metricsUrl);
    expect(after.value("baton_http_requests_total", { method: "GET", route: "(unmatched)", status: "404" }) - before.value("baton_http_requests_total", { method: "GET", route: "(unmatched)", status: "404" })).toBe(1);
    expect(after.samples.some((s) => Object.values(s.labels).some((v) => v.includes("/no/such")))).toBe(false);
  });

  it("counts webhook deliveries and failures", async () => {
    let answer = 200;
    const received: string[] = [];
    const target: Server = createHttpServer((request, response) => {
      request.resume();
      request.on("end", () => {
        received.push(request.url ?? "");
        response.statusCode = answer;
        response.end();
      });
    });
    await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
      const before = await scrape(metricsUrl);
      const hook = async (path: string) => {
        const thread = await t.client.threads.create();
        const run = await t.client.runs.create(thread.thread_id, "echo", { input: human("hi"), webhook: `${url}${path}` });
        await t.client.runs.join(thread.thread_id, run.run_id);
        await expect.poll(() => received.includes(path)).toBe(true);
      };
      await hook("/ok");
      // A 400 is not retried: the delivery fails at once.
      answer = 400;
      await hook("/refused");
      await expect
        .poll(async () => {
          const s = await scrape(metricsUrl);
          const d = (outcome: string) => s.value("baton_webhook_deliveries_total", { outcome }) - before.value("baton_webhook_deliveries_total", { outcome });
          return [d("delivered"), d("failed"), s.value("baton_webhook_attempt_failures_total") - before.value("baton_webhook_attempt_failures_total")];
        })
        .toEqual([1, 1, 1]);
    } finally {
      await new Promise<void>((resolve) => {
        target.close(() => resolve());
        target.closeAllConnections();
      });
    }
  });

  it("reports the Postgres pool and Redis in scale-out, and neither embedded", async () => {
    if (!SCALE_OUT) {
      const s = await scrape(metricsUrl);
      expect(s.has("baton_pg_pool_max")).toBe(false);
      expect(s.has("baton_redis_up")).toBe(false);
      return;
    }
    const s = await scrape(metricsUrl);
    expect(s.value("baton_pg_pool_max")).toBe(10);
    expect(s.value("lg_api_pg_pool_max")).toBe(10);
    expect(s.value("baton_pg_pool_total")).toBeGreaterThanOrEqual(s.value("baton_pg_pool_idle"));
    expect(s.value("baton_pg_pool_waiting")).toBeGreaterThanOrEqual(0);
    // Healthy once both connections have been up a few seconds.
    await expect.poll(async () => (await scrape(metricsUrl)).value("baton_redis_up"), { timeout: 15_000 }).toBe(1);
  });
});

describe("metricsPort", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startServer({ metricsPort: 0, apiKeys: "ops:metrics-test-key-0123456789" });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("moves /metrics to its own listener, which serves nothing else and asks no credentials", async () => {
    expect(t.server.metricsUrl).not.toBe(`${t.url}/metrics`);
    expect(new URL(t.server.metricsUrl).port).not.toBe(new URL(t.url).port);
    // Not on the main port any more.
    expect((await fetch(`${t.url}/metrics`, { headers: { "x-api-key": "metrics-test-key-0123456789" } })).status).toBe(404);
    expect((await fetch(t.server.metricsUrl.replace(/\/metrics$/, "/ok"))).status).toBe(404);
    // The main port's requests are counted there; the metrics listener's own are not among them.
    const s = await scrape(t.server.metricsUrl);
    expect(s.has("baton_queue_pending_runs")).toBe(true);
    expect(s.value("baton_http_requests_total", { method: "GET", route: "(unmatched)", status: "404" })).toBe(1);
    expect(s.value("baton_http_requests_total", { route: "/metrics" })).toBe(0);
  });
});

describe("/metrics behind authentication", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startServer({ apiKeys: "ops:metrics-test-key-0123456789" });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("answers without credentials while the API asks for them", async () => {
    expect((await fetch(`${t.url}/assistants/search`, { method: "POST", body: "{}", headers: { "content-type": "application/json" } })).status).toBe(401);
    const s = await scrape(`${t.url}/metrics`);
    expect(s.has("baton_queue_pending_runs")).toBe(true);
  });
});

describe.runIf(SCALE_OUT)("/metrics of an API and a worker process on one database", () => {
  it("both report the cluster's queue; slots and run counts are the worker's, the cancel the API's", async () => {
    const database = await freshDatabase("metrics-split");
    const shared = { databaseUrl: database.url, redisPrefix: `baton-test:${randomUUID()}:` };
    const api = await startServer({ role: "api", ...shared });
    const worker = await startServer({ role: "worker", ...shared });
    try {
      const apiUrl = api.server.metricsUrl;
      const workerUrl = worker.server.metricsUrl;
      expect(workerUrl).toBe(`${worker.url}/metrics`);
      const [apiBefore, workerBefore] = [await scrape(apiUrl), await scrape(workerUrl)];
      // An API process executes nothing: no worker gauges, as on the official server.
      expect(apiBefore.has("baton_worker_slots_max")).toBe(false);
      expect(apiBefore.has("lg_api_workers_max")).toBe(false);
      expect(workerBefore.value("baton_worker_slots_max")).toBe(256);
      expect(workerBefore.value("baton_info", { role: "worker" })).toBe(1);

      const { thread, run, gate: held } = await startGatedRun(api.client);
      // Read from the database: both processes see the run the worker holds.
      for (const url of [apiUrl, workerUrl]) {
        await expect.poll(async () => (await scrape(url)).value("lg_api_num_running_runs")).toBe(1);
      }
      expect((await scrape(workerUrl)).value("baton_worker_slots_busy")).toBe(1);

      await api.client.runs.cancel(thread.thread_id, run.run_id, true, "interrupt");
      held.open();
      const [apiAfter, workerAfter] = [await scrape(apiUrl), await scrape(workerUrl)];
      const delta = (after: Scrape, before: Scrape, name: string, labels: Record<string, string> = {}) => after.value(name, labels) - before.value(name, labels);
      expect(delta(apiAfter, apiBefore, "baton_run_cancels_total", { state: "running" })).toBe(1);
      expect(delta(workerAfter, workerBefore, "baton_run_cancels_total")).toBe(0);
      expect(delta(workerAfter, workerBefore, "baton_runs_claimed_total", { graph_id: "gated" })).toBe(1);
      expect(delta(workerAfter, workerBefore, "baton_runs_finished_total", { graph_id: "gated", outcome: "interrupted" })).toBe(1);
      expect(delta(apiAfter, apiBefore, "baton_runs_claimed_total")).toBe(0);
      expect(delta(apiAfter, apiBefore, "baton_http_requests_total", { method: "POST", route: "/threads/:thread_id/runs" })).toBe(1);
      expect(delta(workerAfter, workerBefore, "baton_http_requests_total", { method: "POST", route: "/threads/:thread_id/runs" })).toBe(0);
    } finally {
      await worker.close();
      await api.close();
      await database.drop();
    }
  });
});
