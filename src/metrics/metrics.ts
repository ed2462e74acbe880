/**
 * Baton's Prometheus metrics (docs/metrics.md), on prom-client, one registry
 * per server (a test process runs several servers; the global registry would
 * mix them).
 *
 * Three kinds of figure, each costing what it must and no more:
 * - the queue (pending and running runs, per graph, per-user counts folded
 *   into a histogram) is read from the database at scrape time, one grouped
 *   statement (`RunQueue.stats`) shared by every gauge of one scrape and
 *   cached for `QUEUE_STATS_TTL_MS`, so any process, API or worker, reports
 *   the whole cluster's queue and many scrapers cost one read a second;
 * - what happens in this process (runs claimed and released, leases, sweeps,
 *   cancels, webhooks, HTTP requests) is a counter increment or a histogram
 *   observation where it happens; runs executed in execution threads are
 *   counted here too, their pools' calls forwarded to this thread
 *   (src/execution-thread.ts), so the process has one registry;
 * - state that already exists (worker slots, stream buffers, the Postgres
 *   pool, Redis health) is read at scrape time, costing nothing in between.
 *
 * Where the official LangGraph server exposes a counterpart, the same figure
 * is also exposed under its `lg_api_` name, derived at scrape time from
 * Baton's own metric (no second observation on the request path).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from "prom-client";
import type { Clock } from "../core/clock.ts";
import type { RunMetrics, SlotOutcome } from "../core/metrics.ts";
import type { PoolStats, QueueStats, RunQueue } from "../core/ports.ts";
import type { CancelAction } from "../core/types.ts";

/** Queue stats older than this are read again at the next scrape; younger ones are shared. */
export const QUEUE_STATS_TTL_MS = 1_000;

/** Seconds; the official server's HTTP latency buckets in spirit: 5 ms to 5 min. */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Seconds a run waits for a slot: from nothing to an hour. */
const WAIT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
/** Seconds a run executes: graphs calling models take seconds to minutes. */
const RUN_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600];
/** Runs one user has pending (or running): the upper bounds of `baton_queue_runs_per_user`. */
const PER_USER_BUCKETS = [1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000];

/**
 * prom-client's default metrics (CPU, memory, event loop lag, GC) describe
 * the Node process, so they are collected once per process, into a registry
 * of their own that every server's scrape includes: a test process running
 * many servers starts one event-loop monitor, not one per server. Made on
 * first use, not at import.
 */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** HTTP methods used as a label as they are; any other is "other" (the label stays bounded). */
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** What the figures read at scrape time come from; each is optional (a process without it omits its metrics). */
export interface MetricsSources {
  /** The run queue (its `stats`), read at scrape time. */
  queue: Pick<RunQueue, "stats">;
  /** Decides which pending runs are due, and their age. */
  clock: Clock;
  /** Worker slots of this process: undefined in a process that executes no runs (role api). */
  slots?: (() => { max: number; busy: number }) | undefined;
  /** Long responses (streams) open, their buffered bytes, and readers dropped since start. */
  streams?: { readonly open: number; readonly bufferedBytes: number; readonly dropped: number } | undefined;
  /** The Postgres pool (scale-out). */
  pool?: (() => PoolStats) | undefined;
  /** Whether Redis reaches every subscriber (scale-out). */
  redis?: (() => boolean) | undefined;
  /** Build facts for `baton_info`. */
  info: { version: string; role: string; backend: string };
}

/** The outcomes of a webhook: an attempt failed and will be retried, or the delivery ended one way or another. */
export type WebhookOutcome = "delivered" | "retry" | "failed" | "abandoned";

type Values = Awaited<ReturnType<Metric["get"]>>["values"];

/**
 * A metric computed from others at scrape time (the `lg_api_` aliases): it
 * has what the registry asks of a metric (`name`, `help`, `type`, `get`).
 */
function derived(registry: Registry, name: string, help: string, type: "counter" | "gauge" | "histogram", values: () => Promise<Values>): void {
  const metric = {
    name,
    help,
    type,
    aggregator: "sum",
    collect: () => undefined,
    get: async () => ({ name, help, type, aggregator: "sum" as const, values: await values() }),
  };
  registry.registerMetric(metric as unknown as Metric);
}

/**
 * Renames a metric's series (suffix kept), renames or drops labels (dropped
 * ones are summed over), and scales `le` bounds and `_sum` values (seconds
 * to milliseconds for the official names).
 */
function translate(values: Values, from: string, to: string, options: { rename?: Record<string, string>; drop?: string[]; scale?: number } = {}): Values {
  const scale = options.scale ?? 1;
  const merged = new Map<string, Values[number]>();
  for (const value of values) {
    const metricName = ((value as { metricName?: string }).metricName ?? from).replace(from, to);
    const labels: Record<string, string | number> = {};
    for (const [key, label] of Object.entries(value.labels)) {
      if (label === undefined || options.drop?.includes(key)) continue;
      labels[options.rename?.[key] ?? key] = key === "le" && typeof label === "number" ? Math.round(label * scale * 1e6) / 1e6 : label;
    }
    const amount = metricName.endsWith("_sum") ? value.value * scale : value.value;
    const key = `${metricName}|${Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(",")}`;
    const seen = merged.get(key);
    if (seen === undefined) merged.set(key, { metricName, labels, value: amount });
    else seen.value += amount;
  }
  return [...merged.values()];
}

/** The process's metrics: a `RunMetrics` recorder for core and the worker, plus HTTP, webhooks and the scrape. */
export class BatonMetrics implements RunMetrics {
  readonly registry = new Registry();
  #sources: MetricsSources | undefined;
  #stats: { atMs: number; value: Promise<QueueStats | null> } | undefined;

  readonly #claims: Counter<"graph_id">;
  readonly #retries: Counter<"graph_id">;
  readonly #queueWait: Histogram<"graph_id">;
  readonly #finished: Counter<"graph_id" | "outcome">;
  readonly #duration: Histogram<"graph_id" | "outcome">;
  readonly #renewals: Counter;
  readonly #leasesLost: Counter;
  readonly #expiries: Counter;
  readonly #recovered: Counter;
  readonly #abandoned: Counter;
  readonly #queueTimeouts: Counter;
  readonly #cancels: Counter<"action" | "state">;
  readonly #webhooks: Counter<"outcome">;
  readonly #webhookFailures: Counter;
  readonly #requests: Counter<"method" | "route" | "status">;
  readonly #latency: Histogram<"method" | "route">;

  constructor() {
    const registers = [this.registry];
    processMetrics();
    this.#claims = new Counter({ name: "baton_runs_claimed_total", help: "Runs a worker slot of this process took (every attempt).", labelNames: ["graph_id"], registers });
    this.#retries = new Counter({ name: "baton_run_retries_total", help: "Claims of a run's second or later attempt (its previous worker died or lost its lease).", labelNames: ["graph_id"], registers });
    this.#queueWait = new Histogram({
      name: "baton_run_queue_wait_seconds",
      help: "Seconds a run waited for a worker slot, from when it became due to its first claim.",
      labelNames: ["graph_id"],
      buckets: WAIT_BUCKETS,
      registers,
    });
    this.#finished = new Counter({
      name: "baton_runs_finished_total",
      help: "Attempts that left a worker slot of this process, by outcome: the status recorded, or handed_back, fenced, crashed.",
      labelNames: ["graph_id", "outcome"],
      registers,
    });
    this.#duration = new Histogram({
      name: "baton_run_duration_seconds",
      help: "Seconds an attempt held its worker slot, from claim to release, by outcome.",
      labelNames: ["graph_id", "outcome"],
      buckets: RUN_BUCKETS,
      registers,
    });
    this.#renewals = new Counter({ name: "baton_lease_renewals_total", help: "Leases this process's worker pool renewed.", registers });
    this.#leasesLost = new Counter({ name: "baton_leases_lost_total", help: "Leases a renewal found gone (the run was taken from this process; it stops its attempt).", registers });
    this.#expiries = new Counter({ name: "baton_lease_expiries_total", help: "Expired leases this process swept (their worker died or stalled).", registers });
    this.#recovered = new Counter({ name: "baton_runs_recovered_total", help: "Runs with an expired lease this process requeued for another attempt.", registers });
    this.#abandoned = new Counter({ name: "baton_runs_abandoned_total", help: "Runs with an expired lease this process ended as error (last attempt used, or cancelled).", registers });
    this.#queueTimeouts = new Counter({ name: "baton_queue_timeouts_total", help: "Pending runs this process ended as timeout after maxQueueWaitMs.", registers });
    this.#cancels = new Counter({
      name: "baton_run_cancels_total",
      help: "Runs stopped by a cancel request or a multitask interrupt/rollback this process decided, by action and by whether the run was pending or running.",
      labelNames: ["action", "state"],
      registers,
    });

    this.#webhooks = new Counter({
      name: "baton_webhook_deliveries_total",
      help: "Run webhooks this process finished with, by outcome: delivered, failed (refused, or every attempt failed), abandoned (server stopping).",
      labelNames: ["outcome"],
      registers,
    });
    this.#webhookFailures = new Counter({ name: "baton_webhook_attempt_failures_total", help: "Webhook attempts that failed (retried or not).", registers });

    this.#requests = new Counter({ name: "baton_http_requests_total", help: "HTTP requests answered, by method, route template and status.", labelNames: ["method", "route", "status"], registers });
    this.#latency = new Histogram({
      name: "baton_http_request_duration_seconds",
      help: "Seconds from a request's arrival to its response's headers (a stream's first byte), by method and route template.",
      labelNames: ["method", "route"],
      buckets: HTTP_BUCKETS,
      registers,
    });
    derived(this.registry, "lg_api_http_requests_total", "Total number of HTTP requests (official name; = baton_http_requests_total, route as path).", "counter", async () =>
      translate((await this.#requests.get()).values, "baton_http_requests_total", "lg_api_http_requests_total", { rename: { route: "path" } }),
    );
    derived(this.registry, "lg_api_http_requests_latency", "HTTP request latency in milliseconds (official name; = baton_http_request_duration_seconds in ms, route as path).", "histogram", async () =>
      translate((await this.#latency.get()).values, "baton_http_request_duration_seconds", "lg_api_http_requests_latency", { rename: { route: "path" }, scale: 1000 }),
    );
    derived(
      this.registry,
      "lg_api_run_queue_wait_time_1st_attempt",
      "Milliseconds runs waited in the queue before their first attempt (official name; = baton_run_queue_wait_seconds in ms, all graphs).",
      "histogram",
      async () => translate((await this.#queueWait.get()).values, "baton_run_queue_wait_seconds", "lg_api_run_queue_wait_time_1st_attempt", { drop: ["graph_id"], scale: 1000 }),
    );
  }

  /**
   * Registers the figures read at scrape time, once the process has them
   * (the queue, its worker slots, its streams, the Postgres pool, Redis).
   */
  watch(sources: MetricsSources): void {
    this.#sources = sources;
    const registers = [this.registry];
    new Gauge({ name: "baton_info", help: "Always 1; the labels say which Baton this is.", labelNames: ["version", "role", "backend"], registers }).set(
      { version: sources.info.version, role: sources.info.role, backend: sources.info.backend },
      1,
    );

    this.#queueGauges(registers);

    // Worker slots (processes that execute runs only, as the official server shows its worker gauges only there).
    const { slots } = sources;
    if (slots !== undefined) {
      const slotGauge = (name: string, help: string, read: (s: { max: number; busy: number }) => number) =>
        new Gauge({
          name,
          help,
          registers,
          collect() {
            this.set(read(slots()));
          },
        });
      slotGauge("baton_worker_slots_max", "Runs this process executes at once at most (option workers).", (s) => s.max);
      slotGauge("baton_worker_slots_busy", "Worker slots of this process executing a run now.", (s) => s.busy);
      slotGauge("baton_worker_slots_free", "Worker slots of this process free now.", (s) => Math.max(0, s.max - s.busy));
      slotGauge("lg_api_workers_max", "The maximum number of workers available (official name; = baton_worker_slots_max).", (s) => s.max);
      slotGauge("lg_api_workers_active", "The number of currently active workers (official name; = baton_worker_slots_busy).", (s) => s.busy);
      slotGauge("lg_api_workers_available", "The number of available (idle) workers (official name; = baton_worker_slots_free).", (s) => Math.max(0, s.max - s.busy));
    }

    const { streams } = sources;
    if (streams !== undefined) {
      new Gauge({
        name: "baton_stream_subscribers",
        help: "Long responses (run streams, joins, waits) this process is serving now.",
        registers,
        collect() {
          this.set(streams.open);
        },
      });
      new Gauge({
        name: "baton_stream_buffered_bytes",
        help: "Bytes of events waiting in this process's buffers for stream readers that have not taken them yet.",
        registers,
        collect() {
          this.set(streams.bufferedBytes);
        },
      });
      derived(this.registry, "baton_stream_readers_dropped_total", "Stream readers this process dropped for falling streamBufferBytes behind.", "counter", async () => [
        { value: streams.dropped, labels: {} },
      ]);
    }

    const { pool } = sources;
    if (pool !== undefined) {
      const poolGauge = (name: string, help: string, read: (p: PoolStats) => number) =>
        new Gauge({
          name,
          help,
          registers,
          collect() {
            this.set(read(pool()));
          },
        });
      poolGauge("baton_pg_pool_max", "Postgres connections this process may open (option poolSize).", (p) => p.max);
      poolGauge("baton_pg_pool_total", "Postgres connections this process has open.", (p) => p.total);
      poolGauge("baton_pg_pool_idle", "Postgres connections open and idle.", (p) => p.idle);
      poolGauge("baton_pg_pool_waiting", "Queries waiting for a Postgres connection (the pool is exhausted while this is above 0).", (p) => p.waiting);
      poolGauge("lg_api_pg_pool_max", "The maximum size of the postgres connection pool (official name).", (p) => p.max);
      poolGauge("lg_api_pg_pool_size", "Connections currently managed by the postgres connection pool (official name; = baton_pg_pool_total).", (p) => p.total);
      poolGauge("lg_api_pg_pool_available", "Connections currently idle in the postgres connection pool (official name; = baton_pg_pool_idle).", (p) => p.idle);
    }
    const { redis } = sources;
    if (redis !== undefined) {
      new Gauge({
        name: "baton_redis_up",
        help: "1 while both Redis connections are up and subscribed (events reach every subscriber), else 0.",
        registers,
        collect() {
          this.set(redis() ? 1 : 0);
        },
      });
    }
  }

  /** The cluster's queue, from the database (see the module comment). */
  #queueGauges(registers: Registry[]): void {
    const stats = () => this.#queueStats();
    const { clock } = this.#sources!;
    const gauge = <T extends string>(name: string, help: string, labelNames: T[], fill: (g: Gauge<T>, s: QueueStats) => void) =>
      new Gauge<T>({
        name,
        help,
        labelNames,
        registers,
        async collect() {
          const s = await stats();
          // The database did not answer: the last figures stay (0 would tell an autoscaler the queue is empty).
          if (s === null) return;
          this.reset();
          fill(this, s);
        },
      });
    const total = (s: QueueStats, status: "pending" | "running") => s.graphs.reduce((sum, g) => (g.status === status ? sum + g.runs : sum), 0);
    const oldestAge = (s: QueueStats) => {
      const oldest = Math.min(...s.graphs.map((g) => g.oldest_due_ms ?? Infinity));
      return oldest === Infinity ? 0 : Math.max(0, clock.nowMs() - oldest) / 1000;
    };
    new Gauge({
      name: "baton_queue_stats_up",
      help: "1 when the last read of the queue's figures from the database succeeded, else 0 (the baton_queue_* gauges then keep their last values).",
      registers,
      async collect() {
        this.set((await stats()) === null ? 0 : 1);
      },
    });
    gauge("baton_queue_pending_runs", "Runs pending in the whole cluster (delayed ones included).", [], (g, s) => g.set(total(s, "pending")));
    gauge("baton_queue_running_runs", "Runs running in the whole cluster.", [], (g, s) => g.set(total(s, "running")));
    gauge("baton_queue_pending_runs_by_graph", "Runs pending in the whole cluster, by graph.", ["graph_id"], (g, s) => {
      for (const row of s.graphs) if (row.status === "pending") g.set({ graph_id: row.graph_id }, row.runs);
    });
    gauge("baton_queue_running_runs_by_graph", "Runs running in the whole cluster, by graph.", ["graph_id"], (g, s) => {
      for (const row of s.graphs) if (row.status === "running") g.set({ graph_id: row.graph_id }, row.runs);
    });
    gauge("baton_queue_oldest_pending_seconds", "Seconds the oldest due pending run has waited (0: none waiting).", [], (g, s) => g.set(oldestAge(s)));
    gauge("baton_queue_users", "Users with at least one run in the status (the anonymous user counted as one).", ["status"], (g, s) => {
      for (const status of ["pending", "running"] as const) g.set({ status }, s.users.reduce((sum, u) => (u.status === status ? sum + u.users : sum), 0));
    });
    derived(this.registry, "baton_queue_runs_per_user", "How many runs each user has in the status, as a histogram over users: bucket le=N counts the users with at most N (no user id is ever a label).", "histogram", async () => {
      const s = await stats();
      if (s === null) return [];
      const values: Values = [];
      for (const status of ["pending", "running"] as const) {
        const rows = s.users.filter((u) => u.status === status);
        for (const le of [...PER_USER_BUCKETS, Infinity]) {
          const users = rows.reduce((sum, u) => (u.runs <= le ? sum + u.users : sum), 0);
          values.push({ metricName: "baton_queue_runs_per_user_bucket", labels: { status, le: le === Infinity ? "+Inf" : le }, value: users });
        }
        values.push({ metricName: "baton_queue_runs_per_user_sum", labels: { status }, value: rows.reduce((sum, u) => sum + u.runs * u.users, 0) });
        values.push({ metricName: "baton_queue_runs_per_user_count", labels: { status }, value: rows.reduce((sum, u) => sum + u.users, 0) });
      }
      return values;
    });
    gauge("lg_api_num_pending_runs", "The number of runs currently pending (official name; = baton_queue_pending_runs).", [], (g, s) => g.set(total(s, "pending")));
    gauge("lg_api_num_running_runs", "The number of runs currently running (official name; = baton_queue_running_runs).", [], (g, s) => g.set(total(s, "running")));
    gauge("lg_api_pending_runs_wait_time_max", "The maximum time a run has been pending, in seconds (official name in earlier releases; = baton_queue_oldest_pending_seconds).", [], (g, s) =>
      g.set(oldestAge(s)),
    );
  }

  /** One read per `QUEUE_STATS_TTL_MS` shared by every gauge and scraper; null when the database did not answer. */
  #queueStats(): Promise<QueueStats | null> {
    const nowMs = Date.now();
    const sources = this.#sources!;
    if (this.#stats === undefined || nowMs - this.#stats.atMs >= QUEUE_STATS_TTL_MS) {
      this.#stats = { atMs: nowMs, value: sources.queue.stats(sources.clock.nowMs()).catch(() => null) };
    }
    return this.#stats.value;
  }

  // RunMetrics (core/metrics.ts)

  claimed(graphId: string, attempt: number, queuedMs: number): void {
    this.#claims.inc({ graph_id: graphId });
    if (attempt > 1) this.#retries.inc({ graph_id: graphId });
    else this.#queueWait.observe({ graph_id: graphId }, queuedMs / 1000);
  }

  released(graphId: string, outcome: SlotOutcome, runMs: number): void {
    this.#finished.inc({ graph_id: graphId, outcome });
    this.#duration.observe({ graph_id: graphId, outcome }, runMs / 1000);
  }

  leases(renewed: number, lost: number): void {
    if (renewed > 0) this.#renewals.inc(renewed);
    if (lost > 0) this.#leasesLost.inc(lost);
  }

  swept(requeued: number, failed: number): void {
    this.#expiries.inc(requeued + failed);
    if (requeued > 0) this.#recovered.inc(requeued);
    if (failed > 0) this.#abandoned.inc(failed);
  }

  queueTimeouts(count: number): void {
    this.#queueTimeouts.inc(count);
  }

  cancelled(action: CancelAction, wasRunning: boolean): void {
    this.#cancels.inc({ action, state: wasRunning ? "running" : "pending" });
  }

  /** A webhook attempt failed, or a delivery ended (src/http/webhooks.ts). */
  webhook(outcome: WebhookOutcome): void {
    if (outcome === "retry" || outcome === "failed") this.#webhookFailures.inc();
    if (outcome !== "retry") this.#webhooks.inc({ outcome });
  }

  /** One HTTP request answered (src/http/metrics.ts); `route` is the route template, never the raw path. */
  request(method: string, route: string, status: number, seconds: number): void {
    const m = METHODS.has(method) ? method : "other";
    this.#requests.inc({ method: m, route, status: String(status) });
    this.#latency.observe({ method: m, route }, seconds);
  }

  /** The text format, for GET /metrics. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    const [shared, own] = await Promise.all([processMetrics().metrics(), this.registry.metrics()]);
    return { contentType: this.registry.contentType, body: shared + own };
  }
}
