/**
 * Composition root: backend -> core services -> HTTP + workers. The only
 * module that imports every layer.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { serve, type Http2Bindings, type HttpBindings, type ServerType } from "@hono/node-server";
import type { Server } from "node:http";
import { attachProtocolSockets } from "./http/protocol-socket.ts";
import { Hono } from "hono";
import { MemoryEventBus } from "./backends/memory/event-bus.ts";
import { createPostgresBackend, describeUrl, guardClock, holdModeLock, latestVersion, migrate, openPool, pgvectorStatus, schemaVersion } from "./backends/postgres/index.ts";
import { RedisEventBus } from "./backends/redis/event-bus.ts";
import { createSqliteBackend, fileSchemaVersion, latestVersion as sqliteLatestVersion, WriteLock } from "./backends/sqlite/index.ts";
import type { Config, LoadedProject } from "./config.ts";
import { ConfigError, executionThreadCount } from "./config.ts";
import { AssistantService } from "./core/assistant-service.ts";
import { CronService } from "./core/cron-service.ts";
import { CronScheduler } from "./cron/scheduler.ts";
import { systemAssistantId } from "./core/assistants.ts";
import { isLoopback, loadAccess } from "./auth/index.ts";
import { NoAuthorizer, type Authenticator, type Authorizer } from "./core/authorizer.ts";
import { isoFromMs, systemClock, type Clock } from "./core/clock.ts";
import { coerceError } from "./core/errors.ts";
import { GraphSchemas } from "./core/graph-schemas.ts";
import { GraphRegistry, importExport } from "./core/graphs.ts";
import { Idempotency } from "./core/idempotency.ts";
import type { Logger } from "./core/logger.ts";
import { rebase, registerLoopbackFetch, registerSdkLogger } from "./project/globals.ts";
import { checkSharedPackages, resolveSharedPackages } from "./project/packages.ts";
import type { AttemptTimes, Backend, EventBus, RunOutcome } from "./core/ports.ts";
import { RunService } from "./core/runs.ts";
import { StoreService } from "./core/store-service.ts";
import { StoreEngine, StoreSweeper, type StoreEngineOptions, type StoreLimits } from "./core/store-engine.ts";
import { checkStoreIndex, storeIndexFrom, storeTtlSettings } from "./core/store-index.ts";
import { ItemsStore } from "./core/graph-store.ts";
import { ThreadRecordService } from "./core/thread-records.ts";
import { ThreadService } from "./core/threads.ts";
import type { Run } from "./core/types.ts";
import { createApp, httpOptions, type HttpOptions } from "./http/app.ts";
import { metricsHandler } from "./http/metrics.ts";
import { healthRoutes, readinessCheck, type Readiness } from "./http/routes/health.ts";
import { wireRun } from "./http/records.ts";
import { StreamStats, streamPolicy } from "./http/sse.ts";
import { projectHooks, WebhookSender } from "./http/webhooks.ts";
import { bundleUi } from "./ui.ts";
import { BatonMetrics } from "./metrics/metrics.ts";
import { busWithThreads, ExecutionThreads } from "./worker/execution-threads.ts";
import { startTracing } from "./tracing/sdk.ts";
import { sweepExpired, WorkerPool } from "./worker/worker-pool.ts";
import { SWEEP_BATCH, ThreadTtlSweeper, threadTtlPolicy } from "./worker/thread-ttl-sweeper.ts";
import type { TtlSweep } from "./core/thread-ttl.ts";

import { createLogger } from "./core/logger.ts";
export { createLogger };

export const VERSION = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

export interface BatonServer {
  /** The API's URL (a worker-only process serves only /ok there). */
  url: string;
  port: number;
  role: Config["role"];
  graphs: string[];
  storage: string;
  /** Worker threads executing graphs (0: they run on the HTTP event loop). */
  executionThreads: number;
  /** Bytes waiting for slow stream readers now, and readers dropped (internal: tests, diagnostics). */
  streamStats: StreamStats;
  /** Where /metrics is served: `metricsPort`'s own listener when set, else the main port. */
  metricsUrl: string;
  /** Sweeps expired threads now (or as of `atMs`), as the TTL sweeper does every interval (internal: tests, diagnostics). */
  sweepThreads(atMs?: number): Promise<TtlSweep>;
  /** Graceful, then forceful: stop accepting, let runs finish within the grace period, hand back the rest. */
  close(graceMs?: number): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** One process owns a data directory: a second one is refused with the first one's pid. */
function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, "baton.pid");
  try {
    const pid = Number(readFileSync(lock, "utf8"));
    if (pid && pid !== process.pid) {
      try {
        process.kill(pid, 0);
        throw new ConfigError(`Data directory ${dir} is in use by process ${pid}. Stop it, or pass another --data-dir.`);
      } catch (error) {
        if (error instanceof ConfigError) throw error;
        // ESRCH: that process is gone; its lock is stale.
      }
    }
  } catch (error) {
    if (error instanceof ConfigError) throw error;
  }
  writeFileSync(lock, String(process.pid));
  return () => rmSync(lock, { force: true });
}

/** `baton migrate`: brings the Postgres schema up to date; says what it did. */
export async function migrateDatabase(url: string): Promise<string> {
  const pool = openPool({ url, max: 1 });
  try {
    const applied = await migrate(pool);
    return applied.length === 0 ? `${describeUrl(url)} is up to date.` : `${describeUrl(url)}: applied migration(s) ${applied.join(", ")}.`;
  } finally {
    await pool.end();
  }
}

const sqlitePath = (config: Config) => join(resolve(config.dataDir), "baton.sqlite");

/**
 * What `baton doctor` (src/cli/doctor.ts) asks: each of start-up's steps on
 * its own, without serving, migrating or writing anything.
 */
export const probes = {
  /** The database's schema version (null: no SQLite file yet, created at start) and the one this Baton ships. */
  async database(config: Config): Promise<{ description: string; version: number | null; expected: number }> {
    if (config.databaseUrl === undefined) {
      return { description: `SQLite ${sqlitePath(config)}`, version: fileSchemaVersion(sqlitePath(config)), expected: sqliteLatestVersion() };
    }
    const pool = openPool({ url: config.databaseUrl, max: 1 });
    try {
      const version = await schemaVersion(pool);
      // What a semantic store search would use on it (docs/store.md): the doctor installs nothing.
      const pgvector = await pgvectorStatus(pool);
      return { description: `${describeUrl(config.databaseUrl)} (pgvector ${pgvector}; storeVectorSearch ${config.storeVectorSearch})`, version, expected: latestVersion() };
    } finally {
      await pool.end();
    }
  },
  /** Resolves once Redis answers as start-up needs it (the bus listening), else rejects naming Redis. */
  async redis(url: string): Promise<void> {
    const bus = new RedisEventBus({ url, prefix: "baton-doctor:", maxLen: 100, isFinished: async () => true });
    try {
      await readyWithin(bus, url, REDIS_START_TIMEOUT_MS);
    } finally {
      await bus.close();
    }
  },
  /** Refuses LangChain packages Baton does not support (as start-up does). */
  packages(loaded: LoadedProject): void {
    checkSharedPackages(resolveSharedPackages(loaded.baseDir));
  },
  /** Loads one graph as start-up does; rejects saying why it cannot. */
  async graph(loaded: LoadedProject, graphId: string): Promise<void> {
    const source = loaded.graphs.find((g) => g.graphId === graphId)!;
    await new GraphRegistry([{ graphId, spec: source.spec }], loaded.baseDir).loadAll();
  },
  /**
   * The store as start-up would serve it: the index's embedding function
   * loaded (and, when it is the project's own, its dimensions checked), the
   * search it gives and the TTL settings; rejects as start-up would. Stored
   * embeddings are checked at start only (doctor reads no data).
   */
  async store(loaded: LoadedProject): Promise<string> {
    const ttl = storeTtlSettings(loaded.project.store);
    const ttls = `item TTLs: default ${ttl.defaultTtlMinutes === null ? "none" : `${ttl.defaultTtlMinutes} min`}, ${ttl.refreshOnRead ? "refreshed" : "not refreshed"} on read, swept every ${ttl.sweepIntervalMinutes} min`;
    const index = await storeIndexFrom(loaded.baseDir, loaded.project.store);
    if (index === undefined) return `no store.index (a search's query is a text match); ${ttls}`;
    const probe = await checkStoreIndex(index, null);
    return `semantic search (cosine similarity) with ${index.embed}, ${index.dims} dims, fields ${index.fields.join(", ")}${probe === undefined ? "" : ` (warning: ${probe.warning})`}; ${ttls}`;
  },
  /** How requests would be authenticated: rejects as start-up would (auth.path that does not load, bad BATON_API_KEYS, no auth off loopback). */
  async access(config: Config, loaded: LoadedProject): Promise<string> {
    const quiet = createLogger({ level: "error", format: "json", write: () => undefined });
    return (await loadAccess(config, loaded.project, loaded.baseDir, quiet)).mode;
  },
};

/** Embedded SQLite in the data directory, or Postgres when DATABASE_URL is set. */
async function openBackend(
  config: Config,
  logger: Logger,
  clock: Clock,
): Promise<{ backend: Backend; release: () => void | Promise<void>; expireOwner?: (owner: string) => void; writeLock?: SharedArrayBuffer }> {
  if (config.databaseUrl === undefined) {
    const dataDir = resolve(config.dataDir);
    const unlock = lockDataDir(dataDir);
    try {
      // Execution threads open the same file; their writes and this thread's take turns in memory.
      const writeLock = WriteLock.buffer();
      const backend = createSqliteBackend({ path: sqlitePath(config), busyTimeoutMs: config.busyTimeoutMs, writeLock, clock });
      // Embedded mode owns its file: whatever was running died with the last process.
      backend.runs.expireAll();
      return { backend, release: unlock, expireOwner: (owner) => backend.runs.expireOwner(owner), writeLock };
    } catch (error) {
      unlock();
      throw error;
    }
  }
  const url = config.databaseUrl;
  const reach = (error: unknown) => new ConfigError(`Cannot use Postgres at ${describeUrl(url)}: ${coerceError(error).message}. Check DATABASE_URL.`);
  const onLost = (error: Error) => logger.warn("postgres:mode-lock-lost", { error: error.message, detail: "the check that no other process shares this database without Redis is off until restart" });
  const unlock = await holdModeLock(url, config.redisUrl === undefined, onLost).catch((error: unknown) => {
    throw error instanceof Error && /Baton process/.test(error.message) ? new ConfigError(error.message) : reach(error);
  });
  try {
    const backend = await createPostgresBackend({
      url,
      poolSize: config.poolSize,
      clock,
      migrate: config.migrate,
      onPoolError: (error) => logger.warn("postgres:connection-error", { error: error.message }),
    });
    return { backend, release: unlock };
  } catch (error) {
    await unlock();
    throw reach(error);
  }
}

function openBus(config: Config, backend: Backend, logger: Logger): EventBus {
  const threadLog = { max: config.threadStreamMaxEvents, retentionMs: config.threadStreamRetentionMs };
  if (config.redisUrl === undefined) return new MemoryEventBus({ threadMaxEvents: threadLog.max, threadRetentionMs: threadLog.retentionMs });
  return new RedisEventBus({
    url: config.redisUrl,
    prefix: config.redisPrefix,
    maxLen: config.redisMaxLen,
    threadMaxLen: threadLog.max,
    threadRetentionMs: threadLog.retentionMs,
    logger,
    isFinished: async (runId) => {
      const run = await backend.runs.get(runId);
      return run === null || (run.status !== "pending" && run.status !== "running");
    },
  });
}

const REDIS_START_TIMEOUT_MS = 5_000;
/** A readiness probe's database check fails if the database takes longer to answer (probes time out at 1 s by default in Kubernetes). */
const READY_DATABASE_TIMEOUT_MS = 900;
/** At shutdown, webhooks still pending get at most this long (within the shutdown grace). */
const WEBHOOK_GRACE_MS = 5_000;

/** Waits for the Redis bus to listen, or fails start-up with a message naming Redis. */
async function readyWithin(bus: RedisEventBus, url: string, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ConfigError(`Cannot reach Redis at ${redactUrl(url)} within ${ms / 1000} s. Check REDIS_URL.`)), ms);
  });
  try {
    await Promise.race([bus.ready(), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A URL without its password, for messages. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = "";
    return parsed.host;
  } catch {
    return "(unparseable URL)";
  }
}

/** What a worker-only process answers on its port: liveness and readiness, nothing else. */
function workerApp(readiness: () => Promise<Readiness>): Hono {
  const app = new Hono();
  app.get("/ok", (c) => c.json({ ok: true, role: "worker" }));
  app.route("/", healthRoutes(readiness));
  app.notFound((c) => c.json({ detail: "This is a Baton worker process; it serves no API. Send requests to an API process." }, 404));
  return app;
}

/** The address that reaches this server from the same host (a wildcard listen address is not one to connect to). */
function loopbackHost(host: string): string {
  const reachable = host === "0.0.0.0" || host === "" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return reachable.includes(":") ? `[${reachable}]` : reachable;
}

/** Names a loopback-bound server answers by default: what a browser on this host calls it. */
const LOOPBACK_NAMES = ["localhost", ".localhost", "127.0.0.1", "[::1]"];

/**
 * Host names the API answers (see `allowedHosts` in docs/configuration.md):
 * the configured list, or when bound to a loopback address only loopback
 * names, so a web page cannot reach a local server through DNS rebinding.
 */
export function allowedHosts(config: Pick<Config, "allowedHosts" | "host">): string[] | null {
  if (config.allowedHosts !== undefined) {
    const names = config.allowedHosts.split(",").map((name) => name.trim().toLowerCase()).filter((name) => name !== "");
    return names.includes("*") ? null : names;
  }
  const host = config.host.toLowerCase();
  return isLoopback(host) ? [...LOOPBACK_NAMES, ...(LOOPBACK_NAMES.includes(host) || host === "::1" ? [] : [host])] : null;
}

/**
 * Before any graph loads: refuse LangChain packages Baton does not support,
 * say what langgraph.json asked that Baton notes, and set the globals the
 * official server gives a project's code (the SDK's logger, and the fetch a
 * URL-less `new Client()` uses, which reaches `app()` in this process).
 */
function prepareProject(loaded: LoadedProject, logger: Logger, served: () => { app: Hono; prefix: string } | undefined): void {
  const packages = resolveSharedPackages(loaded.baseDir);
  checkSharedPackages(packages);
  logger.debug("project:packages", Object.fromEntries(packages.map((p) => [p.name, { version: p.version, from: p.fromProject ? "project" : "baton", dir: p.dir }])));
  for (const note of loaded.notes) logger[note.level](note.msg, note.fields);
  registerSdkLogger(logger);
  // One server per process in production; a test process with several servers points it at the latest.
  registerLoopbackFetch(async (input, init) => {
    const current = served();
    if (current === undefined) throw new Error("Baton is still starting: a new Client() without apiUrl can call it once it listens.");
    return current.app.request(rebase(input, init, `http://localhost${current.prefix}`));
  });
}

/** What a caller of `createServer` may swap in (tests do); each wins over what the project's `auth` or BATON_API_KEYS gives. */
export interface ServerSeams {
  /** Asked by the services before every action on a resource (default: the project's, else `NoAuthorizer`, everything allowed). */
  authorizer?: Authorizer;
  /** Names the caller of every request (default: the project's, else none: every caller is anonymous). */
  authenticator?: Authenticator;
}

/** The backend, the bus, and how to close them (step 1). */
interface Opened {
  backend: Backend;
  /** The bus the services use (with execution threads, it reaches them too). */
  bus: EventBus;
  /** The bus's own connection (what the execution threads share). */
  baseBus: EventBus;
  expireOwner: ((owner: string) => void) | undefined;
  writeLock: SharedArrayBuffer | undefined;
  /** Execution threads to start (0: graphs execute on this thread). */
  threadCount: number;
  /** Filled in by `startWorkers`, read by the bus and by `cleanup`. */
  running: { threads?: ExecutionThreads; pool?: WorkerPool; crons?: CronScheduler };
  /** This process's metrics (docs/metrics.md): counted from the start, scraped once the server listens. */
  metrics: BatonMetrics;
  cleanup(): Promise<void>;
}

/** Step 1: the backend, the event bus, and the execution-thread count; closed by `cleanup` in reverse. */
async function openStorage(config: Config, loaded: LoadedProject, logger: Logger, clock: Clock): Promise<Opened> {
  const { backend, release, expireOwner, writeLock } = await openBackend(config, logger, clock);
  // Execution threads share the SQLite file and use the system clock. A
  // project's own checkpointer is one object in this thread: a copy in
  // another thread (an in-memory saver, say) would not see its writes, so
  // such projects execute on this thread.
  const ownCheckpointer = loaded.project.checkpointer?.path !== undefined;
  const threadCount = clock === systemClock && !ownCheckpointer ? executionThreadCount(config) : 0;
  if (ownCheckpointer && executionThreadCount(config) > 0) {
    logger.info("server:execution-threads-off", { reason: "langgraph.json names its own checkpointer, which cannot be shared with a thread" });
  }
  const running: Opened["running"] = {};
  const baseBus = openBus(config, backend, logger);
  const bus = threadCount > 0 ? busWithThreads(baseBus, () => running.threads) : baseBus;
  const cleanup = async () => {
    await running.threads?.close(0);
    await bus.close();
    await backend.close();
    await release();
  };
  return { backend, bus, baseBus, expireOwner, writeLock, threadCount, running, metrics: new BatonMetrics(), cleanup };
}

/** The graphs, the checkpointer and the core services (step 2). */
interface Services {
  graphIds: string[];
  graphSources: { graphId: string; spec: string }[];
  registry: GraphRegistry;
  checkpointer: Backend["checkpointer"];
  runs: RunService;
  crons: CronService;
  threadService: ThreadService;
  assistantService: AssistantService;
  storeService: StoreService;
  /** The store graphs see (store.index and store.ttl applied). */
  graphStore: ItemsStore;
  threadRecords: ThreadRecordService;
  metrics: BatonMetrics;
}

/** Step 2: loads the graphs, ensures their system assistants, and builds the core services. */
async function buildServices(config: Config, loaded: LoadedProject, opened: Opened, clock: Clock, seams: ServerSeams, logger: Logger): Promise<Services> {
  const { backend, bus } = opened;
  const graphIds = loaded.graphs.map((g) => g.graphId);
  const graphSources = loaded.graphs.map(({ graphId, spec }) => ({ graphId, spec }));
  const registry = new GraphRegistry(graphSources, loaded.baseDir, { perUser: config.agentPoolPerUser, max: config.agentPoolMax });
  await registry.loadAll();
  for (const { graphId, description } of loaded.graphs) {
    // Created once, as the official server does: a later LANGGRAPH_CONFIG or description applies to a new data directory.
    const defaults = loaded.graphDefaults[graphId];
    await backend.assistants.ensure({
      assistant_id: systemAssistantId(graphId),
      graph_id: graphId,
      config: defaults?.config ?? {},
      context: defaults?.context ?? {},
      metadata: { created_by: "system" },
      name: graphId,
      description,
    });
  }
  const checkpointer =
    loaded.project.checkpointer?.path !== undefined
      ? ((await importExport(loaded.baseDir, loaded.project.checkpointer.path)) as typeof backend.checkpointer)
      : backend.checkpointer;
  const authorizer = seams.authorizer ?? new NoAuthorizer();
  const idempotency = new Idempotency({ keys: backend.idempotency, clock, ttlMs: config.idempotencyTtlMs, claimTimeoutMs: config.idempotencyClaimTimeoutMs });
  const ttlPolicy = threadTtlPolicy(loaded.project.checkpointer?.ttl);
  const store = await openStore(loaded, opened, logger, storeLimits(config), config.storeVectorSearch);
  const threadService = new ThreadService({ threads: backend.threads, runs: backend.runs, assistants: backend.assistants, registry, checkpointer, store: store.graphStore, bus, authorizer });
  const runs = new RunService({
    queue: backend.runs,
    assistants: backend.assistants,
    threads: backend.threads,
    threadService,
    bus,
    registry,
    clock,
    limits: { maxPendingPerUser: config.maxPendingPerUser, maxPendingRuns: config.maxPendingRuns },
    authorizer,
    idempotency,
    metrics: opened.metrics,
    defaultThreadTtl: ttlPolicy.default,
    resumableRetentionMs: config.eventRetentionMs,
  });
  const assistantService = new AssistantService({ assistants: backend.assistants, graphIds, authorizer });
  const storeService = new StoreService({ store: new StoreEngine(backend.items, store.options), authorizer });
  const threadRecords = new ThreadRecordService({ threads: backend.threads, queue: backend.runs, bus, threadService, authorizer, idempotency, defaultTtl: ttlPolicy.default });
  // A cron change wakes the schedulers of every process (the work signal crosses processes on Redis).
  const crons = new CronService({ crons: backend.crons, assistants: backend.assistants, threads: backend.threads, registry, runs, authorizer, clock, changed: () => bus.signalWork() });
  return { graphIds, graphSources, registry, checkpointer, runs, crons, threadService, assistantService, storeService, graphStore: store.graphStore, threadRecords, metrics: opened.metrics };
}

/** The store's bounds from the server's options. */
const storeLimits = (config: Config): StoreLimits => ({ embedTimeoutMs: config.storeEmbedTimeoutMs, searchMaxCandidates: config.storeSearchMaxCandidates });

/** The `search` of `store:ready`. */
const describeSearch = (choice: { search: "pgvector" | "exact" }) =>
  choice.search === "pgvector" ? "pgvector (HNSW index on cosine distance)" : "exact scan (cosine similarity over every candidate's embeddings)";

/**
 * The store's index (loaded and checked: a dims mismatch refuses the start)
 * and TTL settings from langgraph.json, the store graphs see, and the
 * sweeper of expired items (stopped with what step 1 opened).
 */
async function openStore(
  loaded: LoadedProject,
  opened: Opened,
  logger: Logger,
  limits: StoreLimits,
  vectorSearch: Config["storeVectorSearch"],
): Promise<{ options: StoreEngineOptions; graphStore: ItemsStore }> {
  const { backend } = opened;
  const index = await storeIndexFrom(loaded.baseDir, loaded.project.store);
  const probe = index === undefined ? undefined : await checkStoreIndex(index, await backend.items.vectorDims());
  if (probe !== undefined) logger.warn("store:embed-probe-failed", { embed: index?.embed, reason: probe.warning });
  const ttl = storeTtlSettings(loaded.project.store);
  const sweeper = new StoreSweeper(backend.items, ttl.sweepIntervalMinutes, logger);
  const cleanup = opened.cleanup.bind(opened);
  opened.cleanup = async () => {
    await sweeper.close();
    await cleanup();
  };
  const pgvector = (await backend.items.vectorExtension?.()) ?? null;
  // pgvector's index on Postgres when it can be had (or as storeVectorSearch says), else the exact scan (docs/store.md).
  if (index === undefined && vectorSearch !== "auto") {
    logger.warn("store:vector-search-unused", { storeVectorSearch: vectorSearch, reason: "langgraph.json has no store.index: a store search's query is a text match" });
  }
  if (index !== undefined && vectorSearch === "pgvector" && backend.items.prepareVectorSearch === undefined) {
    throw new Error('storeVectorSearch is "pgvector", but it needs Postgres (DATABASE_URL); the embedded SQLite store ranks by the exact scan. Set BATON_STORE_VECTOR_SEARCH=auto, or serve on Postgres with pgvector.');
  }
  const choice =
    index === undefined ? undefined : ((await backend.items.prepareVectorSearch?.(index.dims, vectorSearch, logger)) ?? { search: "exact" as const, reason: null });
  logger.info("store:ready", {
    index: index === undefined ? null : { embed: index.embed, dims: index.dims, fields: index.fields },
    pgvector: choice?.search === "pgvector" ? "installed" : pgvector,
    search: choice === undefined ? "text match (no store.index)" : describeSearch(choice),
    ...(choice?.reason ? { exact_because: choice.reason } : {}),
    ttl: { refresh_on_read: ttl.refreshOnRead, default_ttl_minutes: ttl.defaultTtlMinutes, sweep_interval_minutes: ttl.sweepIntervalMinutes },
  });
  const options = { index, ttl, ...limits };
  return { options, graphStore: new ItemsStore(backend.items, options) };
}

/** The HTTP side (step 3). */
interface Api {
  app: Hono;
  http: HttpOptions;
  /** The project's own Hono app (langgraph.json `http.app`), if any. */
  userApp: unknown;
  schemas: GraphSchemas;
}

/** Step 3: the HTTP app over the services, with the project's http options and app. */
async function buildApi(config: Config, loaded: LoadedProject, logger: Logger, services: Services, authenticator: Authenticator | undefined, readiness: () => Promise<Readiness>): Promise<Api> {
  const http = httpOptions(loaded.project.http);
  const userApp = http.app !== undefined ? await importExport(loaded.baseDir, http.app) : undefined;
  const schemas = new GraphSchemas(services.graphSources, loaded.baseDir, logger);
  const ui = config.role === "worker" ? new Map() : await bundleUi(loaded.project, loaded.baseDir, logger);
  const app = createApp(
    {
      assistantService: services.assistantService,
      storeService: services.storeService,
      threadRecords: services.threadRecords,
      registry: services.registry,
      schemas,
      runs: services.runs,
      crons: services.crons,
      threadService: services.threadService,
      ui,
      logger,
      readiness,
      options: {
        maxBodyBytes: config.maxBodyBytes,
        keepAliveMs: config.keepAliveMs,
        version: VERSION,
        limits: {
          maxJsonDepth: config.maxJsonDepth,
          maxStringLength: config.maxStringLength,
          maxObjectKeys: config.maxObjectKeys,
          maxIdsPerRequest: config.maxIdsPerRequest,
          maxFilterKeys: config.maxFilterKeys,
        },
        allowedHosts: allowedHosts(config),
        streamBufferBytes: config.streamBufferBytes,
        webhooks: { allowPrivate: config.webhookAllowPrivate },
        userHeader: config.userHeader,
        recordRequest: (method, route, status, seconds) => services.metrics.request(method, route, status, seconds),
      },
    },
    http,
    userApp,
    authenticator,
  );
  return { app, http, userApp, schemas };
}

/** Run execution (step 4). */
interface Workers {
  webhooks: WebhookSender;
  /** Where execution threads read the API's port once it listens. */
  apiPort: SharedArrayBuffer;
}

/**
 * Step 4: webhook delivery, and (unless the role is `api`) the execution
 * threads or the worker pool, swept of expired leases; the pool itself
 * starts claiming once the server listens.
 */
async function startWorkers(config: Config, loaded: LoadedProject, logger: Logger, opened: Opened, services: Services, api: Api): Promise<Workers> {
  const { backend, bus, baseBus, running, threadCount, writeLock, expireOwner } = opened;
  const { http, userApp } = api;
  /**
   * Webhooks: the run and its output, queued for delivery apart from the
   * worker slots (src/http/webhooks.ts: address policy, retries). A relative
   * URL goes to the project's own app, never to the API.
   */
  const webhooks = new WebhookSender({
    logger,
    policy: { allowPrivate: config.webhookAllowPrivate, timeoutMs: config.webhookTimeoutMs, attempts: config.webhookAttempts },
    app: userApp !== undefined ? projectHooks(userApp as Hono) : undefined,
    userAgent: `Baton/${VERSION}`,
    onOutcome: (outcome) => opened.metrics.webhook(outcome),
  });
  const onFinished = async (run: Run, outcome: RunOutcome, times: AttemptTimes) => {
    const url = run.kwargs.webhook;
    if (!url || http.disabled.webhooks) return;
    // Built once; each attempt adds when it was sent, as the official server's body says.
    const fields = {
      ...wireRun({ ...run, status: outcome.status }),
      run_started_at: isoFromMs(times.startedAtMs),
      run_ended_at: isoFromMs(times.endedAtMs),
    };
    const done = { values: outcome.output, error: outcome.error };
    const body = () => JSON.stringify({ ...fields, webhook_sent_at: new Date().toISOString(), ...done });
    webhooks.enqueue({ runId: run.run_id, url, body });
  };

  const poolOptions = {
    concurrency: config.workers,
    leaseMs: config.leaseMs,
    leaseRenewMs: config.leaseRenewMs,
    sweepIntervalMs: config.sweepIntervalMs,
    pollIntervalMs: config.pollIntervalMs,
    maxAttempts: config.maxAttempts,
    runTimeoutMs: config.runTimeoutMs,
    maxRunningPerUser: config.maxRunningPerUser,
    maxQueueWaitMs: config.maxQueueWaitMs,
    resumableRetentionMs: config.eventRetentionMs,
  };
  const executes = config.role !== "api";
  // Execution threads reach this server over loopback once it listens (its port lands here).
  const apiPort = new SharedArrayBuffer(4);
  if (executes && threadCount > 0) {
    // A thread's pool sweeps only its own leases: this thread sweeps at start and for a thread that died.
    const sweepAll = () =>
      sweepExpired({ queue: backend.runs, bus, logger, metrics: opened.metrics }, { maxAttempts: config.maxAttempts, resumableRetentionMs: config.eventRetentionMs });
    await sweepAll();
    running.threads = await ExecutionThreads.start({
      count: threadCount,
      data: {
        databasePath: sqlitePath(config),
        busyTimeoutMs: config.busyTimeoutMs,
        writeLock: writeLock!,
        graphs: services.graphSources,
        baseDir: loaded.baseDir,
        store: loaded.project.store ?? null,
        storeLimits: storeLimits(config),
        agentPool: { perUser: config.agentPoolPerUser, max: config.agentPoolMax },
        api: { host: loopbackHost(config.host), port: apiPort, prefix: http.mountPrefix },
        logLevel: config.logLevel,
        // The run slots are shared out between the threads.
        pool: { ...poolOptions, concurrency: Math.ceil(config.workers / threadCount) },
      },
      bus: baseBus,
      logger,
      metrics: opened.metrics,
      onFinished,
      // A thread that ends in the middle of a write runs no `finally`.
      onThreadEnded: (threadId) => WriteLock.releaseHeldBy(writeLock!, threadId),
      onThreadLost: async (owner) => {
        expireOwner?.(owner);
        await sweepAll();
        bus.signalWork();
      },
    });
  } else if (executes) {
    running.pool = new WorkerPool(
      {
        queue: backend.runs,
        bus,
        registry: services.registry,
        assistants: backend.assistants,
        checkpointer: services.checkpointer,
        store: services.graphStore,
        logger,
        onFinished,
        metrics: opened.metrics,
      },
      poolOptions,
    );
    await running.pool.sweep();
  }
  return { webhooks, apiPort };
}

/**
 * Metrics (docs/metrics.md): the figures read at scrape time are wired to
 * what this process has, and `GET /metrics` is mounted on `served`, or with
 * `metricsPort` served by a listener of its own (no other route, any Host,
 * no authentication), closed with the rest. Resolves that listener's URL.
 */
async function serveMetrics(config: Config, opened: Opened, served: Hono, streams: StreamStats, clock: Clock): Promise<string | undefined> {
  const { backend, baseBus, running, metrics } = opened;
  metrics.watch({
    queue: backend.runs,
    clock,
    slots:
      config.role === "api"
        ? undefined
        : () => {
            const { pool, threads } = running;
            if (threads !== undefined) return { max: Math.ceil(config.workers / threads.count) * threads.count, busy: threads.busySlots() };
            return { max: config.workers, busy: pool?.activeCount ?? 0 };
          },
    streams,
    pool: backend.poolStats?.bind(backend),
    redis: baseBus instanceof RedisEventBus ? () => baseBus.healthy() : undefined,
    info: { version: VERSION, role: config.role, backend: backend.name },
  });
  const handler = metricsHandler(() => metrics.scrape());
  if (config.metricsPort === undefined) {
    served.get("/metrics", handler);
    return undefined;
  }
  const app = new Hono();
  app.get("/metrics", handler);
  app.notFound((c) => c.json({ detail: "This port serves only GET /metrics (option metricsPort)." }, 404));
  const server = await new Promise<ServerType>((resolveServer, reject) => {
    const s = serve({ fetch: app.fetch, port: config.metricsPort, hostname: config.host }, () => resolveServer(s));
    s.once("error", (error: NodeJS.ErrnoException) =>
      reject(error.code === "EADDRINUSE" ? new ConfigError(`Metrics port ${config.metricsPort} on ${config.host} is already in use. Set another BATON_METRICS_PORT.`) : error),
    );
  });
  // Closed last, with what step 1 opened (also when start-up fails after this point).
  const cleanup = opened.cleanup.bind(opened);
  opened.cleanup = async () => {
    await cleanup();
    (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    await new Promise<void>((done) => server.close(() => done()));
  };
  return `http://${loopbackHost(config.host)}:${(server.address() as AddressInfo).port}/metrics`;
}

/**
 * The cron scheduler (docs/crons.md), in processes that execute runs: it
 * looks at the crons when the next one is due, when a cron changes
 * (the bus's work signal, from any process), and at least every
 * `cronPollMs`. Closed first at shutdown.
 */
function startCronScheduler(config: Config, opened: Opened, services: Services, logger: Logger, clock: Clock): void {
  const scheduler = new CronScheduler(services.crons, clock, logger, { pollMs: config.cronPollMs });
  opened.running.crons = scheduler;
  opened.bus.onWork(() => scheduler.wake());
  scheduler.start();
}

/** Step 5: serves `served` on the configured address, each request under the stream policy. */
async function listen(config: Config, logger: Logger, served: Hono, streamStats: StreamStats): Promise<ServerType> {
  return new Promise((resolveServer, reject) => {
    // Each request runs under the stream policy: what a slow stream reader may hold, and its connection to cut.
    const fetch = (request: Request, env: HttpBindings | Http2Bindings) =>
      streamPolicy.run({ bufferBytes: config.streamBufferBytes, logger, stats: streamStats, connection: env.outgoing }, () => served.fetch(request, env));
    const s = serve({ fetch, port: config.port, hostname: config.host }, () => resolveServer(s));
    // Protocol v2 WebSockets: their upgrade requests go through the same app (docs/streaming.md).
    attachProtocolSockets(s as Server, (request, env) => served.fetch(request, env), logger);
    s.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new ConfigError(`Port ${config.port} on ${config.host} is already in use. Pass another --port (0 picks a free one).`)
          : error,
      ),
    );
  });
}

/**
 * Step 6: graceful, then forceful: stop accepting, let runs finish within
 * the grace period and hand back the rest, then close what step 1 opened.
 * Idempotent: every call answers the same promise.
 */
function closer(config: Config, logger: Logger, server: ServerType, opened: Opened, api: Api, workers: Workers, draining: () => void): (graceMs?: number) => Promise<void> {
  const { running, threadCount } = opened;
  let closing: Promise<void> | undefined;
  return (graceMs = config.shutdownGraceMs) =>
    (closing ??= (async () => {
      const { pool, threads } = running;
      // Readiness fails first (503 "draining"), and the listener keeps answering while runs drain, so
      // a load balancer or probe sees the process leave instead of finding its port closed.
      draining();
      logger.info("server:stopping", { grace_ms: graceMs, ...(pool ? { active_runs: pool.activeCount } : { execution_threads: threadCount }) });
      await running.crons?.close();
      await pool?.close(graceMs);
      await threads?.close(graceMs);
      const httpClosed = new Promise<void>((done) => server.close(() => done()));
      // Runs that just ended queued their webhooks: a short grace, then they are abandoned (logged).
      await workers.webhooks.close(Math.min(graceMs, WEBHOOK_GRACE_MS));
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      await httpClosed;
      await api.schemas.close();
      await opened.cleanup();
      logger.info("server:stopped");
    })());
}

/**
 * Starts Baton: (1) open the backend and bus, (2) build the core services,
 * (3) build the HTTP app, (4) start the workers, (5) listen, and hand back
 * (6) `close`. A failure on the way closes what was opened.
 */
export async function createServer(config: Config, loaded: LoadedProject, logger: Logger, clock: Clock = systemClock, seams: ServerSeams = {}): Promise<BatonServer> {
  let servedApp: { app: Hono; prefix: string } | undefined;
  prepareProject(loaded, logger, () => servedApp);
  const access = await loadAccess(config, loaded.project, loaded.baseDir, logger);
  seams = { authorizer: seams.authorizer ?? access.authorizer, authenticator: seams.authenticator ?? access.authenticator };
  const opened = await openStorage(config, loaded, logger, clock);
  // Before the workers and the listener, so their first spans are recorded; off unless OTEL_* asks (docs/tracing.md).
  const tracing = await startTracing().catch(async (error: unknown) => {
    await opened.cleanup();
    throw error;
  });
  try {
    if (opened.baseBus instanceof RedisEventBus) await readyWithin(opened.baseBus, config.redisUrl!, REDIS_START_TIMEOUT_MS);
    // Scale-out: this process's clock must agree with the database's (docs/operations.md, "Clocks").
    await guardClock(opened.backend, config.leaseMs, logger);
    const services = await buildServices(config, loaded, opened, clock, seams, logger);
    // Threads whose TTL expired (docs/threads.md): swept by processes that execute runs, stopped with the storage.
    const threadTtl = new ThreadTtlSweeper(
      { threads: opened.backend.threads, logger, batch: config.databaseUrl === undefined ? SWEEP_BATCH.sqlite : SWEEP_BATCH.postgres },
      threadTtlPolicy(loaded.project.checkpointer?.ttl),
    );
    if (loaded.project.checkpointer?.ttl && loaded.project.checkpointer.path !== undefined) {
      logger.warn("threads:ttl-own-checkpointer", { detail: "expired threads are deleted from Baton's records, but the checkpoints in the project's own saver (checkpointer.path) are neither deleted nor pruned" });
    }
    const ttlConfig = loaded.project.checkpointer?.ttl;
    if (ttlConfig?.strategy != null && ttlConfig.default_ttl == null) {
      logger.warn("threads:ttl-strategy-unused", { strategy: ttlConfig.strategy, detail: "checkpointer.ttl.strategy is the strategy of default_ttl, which is not set: threads get no TTL unless they ask, with their own strategy" });
    }
    const closeStorage = opened.cleanup.bind(opened);
    opened.cleanup = async () => {
      await threadTtl.close();
      await closeStorage();
    };
    let draining = false;
    const readiness = readinessCheck({
      schema: () => opened.backend.schemaStatus(),
      bus: config.redisUrl === undefined ? undefined : () => opened.baseBus.healthy?.() ?? false,
      draining: () => draining,
      timeoutMs: READY_DATABASE_TIMEOUT_MS,
      log: (message) => logger.warn("ready:database-failed", { error: message }),
    });
    const api = await buildApi(config, loaded, logger, services, seams.authenticator, readiness);
    const workers = await startWorkers(config, loaded, logger, opened, services, api);

    const served = config.role === "worker" ? workerApp(readiness) : api.app;
    const streamStats = new StreamStats();
    const metricsUrl = await serveMetrics(config, opened, served, streamStats, clock);
    servedApp = { app: served, prefix: config.role === "worker" ? "" : api.http.mountPrefix };
    const server = await listen(config, logger, served, streamStats);
    opened.running.pool?.start();
    if (config.role !== "api") startCronScheduler(config, opened, services, logger, clock);
    if (config.role !== "api") threadTtl.start();
    const port = (server.address() as AddressInfo).port;
    Atomics.store(new Int32Array(workers.apiPort), 0, port);
    Atomics.notify(new Int32Array(workers.apiPort), 0);
    const url = `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}`;
    const closeServer = closer(config, logger, server, opened, api, workers, () => (draining = true));
    // The spans still queued are flushed last, once the runs have ended.
    const close = (graceMs?: number) => closeServer(graceMs).finally(() => tracing.close());
    return {
      url,
      port,
      role: config.role,
      graphs: services.graphIds,
      storage: opened.backend.description,
      executionThreads: opened.running.threads?.count ?? 0,
      streamStats,
      metricsUrl: metricsUrl ?? `${url}/metrics`,
      sweepThreads: (atMs) => threadTtl.sweep(atMs),
      close,
      [Symbol.asyncDispose]: () => close(0),
    };
  } catch (error) {
    await opened.cleanup().catch(() => undefined);
    await tracing.close();
    throw error instanceof ConfigError ? error : new ConfigError(coerceError(error).message);
  }
}
