/**
 * Configuration: one zod schema, one loader. Precedence: command-line flags,
 * then environment (BATON_*), then defaults. This is the only module that
 * reads `process.env`. See docs/configuration.md for every option.
 */
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, resolve } from "node:path";
import { parseEnv } from "node:util";
import { z } from "zod";

/** A graph entry: `"./file.ts:export"`, or `{"path": "./file.ts:export", "description": "..."}`. */
const GraphEntry = z.union([z.string().min(1), z.object({ path: z.string().min(1), description: z.string().nullish() })]);

/**
 * langgraph.json. Most keys of the official schema allow `null` for "not
 * set". Keys Baton does not implement are refused or noted by
 * `reviewProject`, never silently ignored.
 */
export const ProjectSchema = z.object({
  graphs: z
    .record(z.string().min(1), GraphEntry)
    .refine((g) => Object.keys(g).length > 0, "at least one graph is required")
    // Read everywhere as the export spec; descriptions are kept by loadProject.
    .transform((g) => Object.fromEntries(Object.entries(g).map(([id, entry]) => [id, typeof entry === "string" ? entry : entry.path]))),
  env: z.union([z.string(), z.record(z.string(), z.string())]).nullish(),
  /** Validated by src/http/project-options.ts. */
  http: z.object({ app: z.string().optional() }).catchall(z.unknown()).nullish(),
  /**
   * Custom authentication and authorization (src/auth/project-auth.ts):
   * `path` names an `Auth` instance. `disable_studio_auth` and `openapi`
   * are accepted (docs/auth.md says how each applies); any other key
   * (`cache`, say) is refused.
   */
  auth: z
    .object({
      path: z.string().min(1, "auth.path must name the Auth instance (./auth.ts:auth)"),
      disable_studio_auth: z.boolean().optional(),
      openapi: z.unknown().optional(),
    })
    .strict()
    .nullish(),
  /**
   * `path`: the project's own saver. `ttl`: thread TTLs (src/worker/thread-ttl-sweeper.ts,
   * docs/threads.md), the keys of the official ThreadTTLConfig; minutes throughout.
   */
  checkpointer: z
    .object({
      path: z.string().optional(),
      ttl: z
        .object({
          strategy: z.enum(["delete", "keep_latest"]).nullish(),
          // As a thread's own ttl: at least 0.01 minutes (MIN_TTL_MINUTES, src/core/thread-ttl.ts), at most 100 years.
          default_ttl: z.number().min(0.01).max(52_560_000).nullish(),
          sweep_interval_minutes: z.number().positive().nullish(),
          sweep_limit: z.number().int().positive().nullish(),
        })
        .strict()
        .nullish(),
    })
    .catchall(z.unknown())
    .nullish(),
  /** The store's semantic index and item TTLs (src/core/store-index.ts, docs/store.md). */
  store: z
    .object({
      index: z
        .object({
          embed: z.string().min(1, "store.index.embed must name an embedding function (./embeddings.ts:embed) or provider:model"),
          dims: z.number().int().positive(),
          fields: z.array(z.string().min(1)).min(1).nullish(),
        })
        .strict()
        .nullish(),
      ttl: z
        .object({
          refresh_on_read: z.boolean().nullish(),
          // At most 100 years, as a put's own ttl and the thread TTL: a larger one overflows the expiry's bigint column.
          default_ttl: z.number().positive().max(52_560_000).nullish(),
          sweep_interval_minutes: z.number().positive().nullish(),
        })
        .strict()
        .nullish(),
    })
    .catchall(z.unknown())
    .nullish(),
  ui: z.record(z.string(), z.string()).nullish(),
  ui_config: z.object({ shared: z.array(z.string()).optional() }).catchall(z.unknown()).nullish(),
}).catchall(z.unknown());
export type Project = z.infer<typeof ProjectSchema>;

const int = (min: number) => z.coerce.number().int().min(min);

export const ConfigSchema = z.object({
  /** Path of langgraph.json. */
  configPath: z.string().default("./langgraph.json"),
  /**
   * TCP port; 0 picks a free one. Unset: `DEFAULT_PORT` (8123), or for role
   * worker `WORKER_PORT` (8124), so an API and a worker started with
   * defaults on one host do not collide (resolved by loadConfig).
   */
  port: int(0).max(65535).optional(),
  host: z.string().default("127.0.0.1"),
  /** Serves /metrics on its own listener on this port (same host address), not on `port`; unset: on `port`. 0 picks a free one. */
  metricsPort: int(0).max(65535).optional(),
  /** Where the SQLite file lives. */
  dataDir: z.string().default(".baton"),
  /** Runs executed at once. */
  workers: int(1).max(1000).default(256),
  /**
   * Embedded mode: worker threads that execute graphs, so the HTTP side and
   * graph execution use different cores. `auto`: one fewer than the cores,
   * at most 4 (1 on a 2-core machine; 0 on one core: graphs run on the HTTP
   * event loop).
   */
  executionThreads: z.union([z.literal("auto"), int(0).max(64)], { error: "a whole number from 0 to 64, or auto" }).default("auto"),
  /** Running runs one named user may have at once (who the user is: docs/scheduling.md; the anonymous user is not capped). */
  maxRunningPerUser: int(1).default(3),
  /** Pending runs one user may have queued before new ones get 429. */
  maxPendingPerUser: int(1).default(1_000),
  /** Pending runs in the whole queue before new ones get 429. */
  maxPendingRuns: int(1).default(100_000),
  /** Without authentication: the request header that names the user a run counts against (lower case); unset: the thread's metadata.owner. */
  userHeader: z.string().toLowerCase().optional(),
  /** A run still pending this long after it became due ends as `timeout` (ms); 0: no deadline. */
  maxQueueWaitMs: int(0).default(0),
  /** Factory graphs: instances kept per user at most (each leased to one run at a time). */
  agentPoolPerUser: int(1).default(2),
  /** Factory graphs: instances kept in all at most (least recently used evicted). */
  agentPoolMax: int(1).default(100),
  /** How long an Idempotency-Key is remembered (ms). */
  idempotencyTtlMs: int(1000).default(86_400_000),
  /** How long a key's claim may go unanswered (ms) before a retry takes it over, its request presumed dead (docs/auth.md). */
  idempotencyClaimTimeoutMs: int(100).default(60_000),
  logFormat: z.enum(["json", "pretty"]).default("json"),
  logLevel: z.enum(["debug", "info", "warn", "error"]).default("info"),
  leaseMs: int(1000).default(30_000),
  leaseRenewMs: int(100).default(10_000),
  sweepIntervalMs: int(100).default(15_000),
  pollIntervalMs: int(10).default(1_000),
  /** The cron scheduler's longest sleep between two looks at the crons, in ms (docs/crons.md). */
  cronPollMs: int(10).default(10_000),
  maxAttempts: int(1).default(3),
  runTimeoutMs: int(1000).default(3_600_000),
  shutdownGraceMs: int(0).default(30_000),
  maxBodyBytes: int(1024).default(10 * 1024 * 1024),
  /** JSON in a request body may nest this many objects and arrays deep at most (422 beyond). At most 1000: deeper values cannot be written back (JSON.stringify and Postgres jsonb fail near 4,000 and 10,000 levels). */
  maxJsonDepth: int(2).max(1_000).default(100),
  /** A string in a request body may be this many UTF-16 code units long at most (422 beyond). */
  maxStringLength: int(1).default(4 * 1024 * 1024),
  /** An object in a request body may have this many keys at most (422 beyond). */
  maxObjectKeys: int(1).default(10_000),
  /** Ids one request may name (thread search ids, run ids to cancel, ...) at most (422 beyond). */
  maxIdsPerRequest: int(1).default(1_000),
  /** Keys one metadata/values/store filter may have, counted at every level (422 beyond). */
  maxFilterKeys: int(1).default(100),
  /** How long one call of the store's embedding provider may take before the request fails with 503 (ms; docs/store.md). */
  storeEmbedTimeoutMs: int(1).default(30_000),
  /** Items one semantic store search ranks at most (its exact scan's bound); more is a 422 asking to narrow the search (docs/store.md). */
  storeSearchMaxCandidates: int(1).default(10_000),
  /** How a semantic store search is computed on Postgres: "auto" (pgvector's index when the server has pgvector 0.8+, else the exact scan), "pgvector" (refuse to start without it) or "exact" (docs/store.md). */
  storeVectorSearch: z.enum(["auto", "exact", "pgvector"]).default("auto"),
  /**
   * Host names (the Host header, without port) the API answers, comma-separated;
   * a leading dot allows subdomains. Unset: bound to a loopback address, only
   * loopback names (localhost, *.localhost, 127.0.0.1, [::1]) are answered (DNS
   * rebinding defence); bound elsewhere, any. "*" answers any.
   */
  allowedHosts: z.string().optional(),
  /** Deliver run webhooks to loopback, private and link-local addresses too. */
  webhookAllowPrivate: z.preprocess((v) => (v === "false" || v === "0" ? false : v === "true" || v === "1" ? true : v), z.boolean()).default(false),
  /** One webhook delivery attempt may take this long (ms) before it counts as failed. */
  webhookTimeoutMs: int(100).default(10_000),
  /** Webhook delivery attempts at most (with exponential backoff between them). */
  webhookAttempts: int(1).max(20).default(3),
  /** Bytes of events one stream reader that does not keep up may have waiting; beyond, it is disconnected (it may resume with Last-Event-ID). */
  streamBufferBytes: int(64 * 1024).default(16 * 1024 * 1024),
  keepAliveMs: int(100).default(5_000),
  /** How long a finished run's events stay joinable, for runs created with stream_resumable. */
  eventRetentionMs: int(0).default(3_600_000),
  /** Events a thread's stream log keeps at most (thread streams and their Last-Event-ID resume); older ones are dropped. */
  threadStreamMaxEvents: int(1).default(10_000),
  /** How long a thread's stream log is kept after its last event (ms). */
  threadStreamRetentionMs: int(1_000).default(300_000),
  busyTimeoutMs: int(0).default(5_000),
  /** Restart the server when a file of the project changes (baton dev). */
  reload: z.boolean().default(false),
  /** What this process does: serve the API, execute runs, or both. */
  role: z.enum(["all", "api", "worker"]).default("all"),
  /** Postgres connection string; set, it selects scale-out (Postgres instead of SQLite). */
  databaseUrl: z.string().url().optional(),
  /**
   * Built-in API-key authentication: accepted keys, comma-separated, each
   * `identity:key` (a bare key is identity `default`); at least 16
   * characters each. Not with `auth` in langgraph.json.
   */
  apiKeys: z.string().optional(),
  /** Serve with no authentication on an address other than loopback (a proxy in front authenticates); refused otherwise. */
  allowUnauthenticated: z.preprocess((v) => (v === "false" || v === "0" ? false : v === "true" || v === "1" ? true : v), z.boolean()).default(false),
  /** Redis connection string (events, cancels, wake-ups across processes); needs databaseUrl. */
  redisUrl: z.string().url().optional(),
  /** Postgres connections this process opens at most. */
  poolSize: int(1).max(1000).default(10),
  /** Apply pending Postgres migrations at start (safe with several processes). */
  migrate: z.preprocess((v) => (v === "false" || v === "0" ? false : v === "true" || v === "1" ? true : v), z.boolean()).default(true),
  /** Prefix of Baton's Redis keys and channels. */
  redisPrefix: z.string().min(1).default("baton:"),
  /** Events kept per run in Redis at most (older ones are trimmed). */
  redisMaxLen: int(100).default(100_000),
});
/** The port is always resolved (see `port` above). */
export type Config = Readonly<Omit<z.infer<typeof ConfigSchema>, "port"> & { port: number }>;

/** The API's port when none is given (the official server's). */
export const DEFAULT_PORT = 8123;
/** A worker process's health port when none is given: beside an API on the same host. */
export const WORKER_PORT = 8124;

const ENV: Record<string, keyof Config> = {
  BATON_CONFIG: "configPath",
  // The official server image's variable; BATON_PORT wins over it (read later).
  PORT: "port",
  BATON_PORT: "port",
  BATON_HOST: "host",
  BATON_METRICS_PORT: "metricsPort",
  BATON_DATA_DIR: "dataDir",
  BATON_WORKERS: "workers",
  BATON_EXECUTION_THREADS: "executionThreads",
  BATON_MAX_RUNNING_PER_USER: "maxRunningPerUser",
  BATON_MAX_PENDING_PER_USER: "maxPendingPerUser",
  BATON_MAX_PENDING_RUNS: "maxPendingRuns",
  BATON_USER_HEADER: "userHeader",
  BATON_MAX_QUEUE_WAIT_MS: "maxQueueWaitMs",
  BATON_AGENT_POOL_PER_USER: "agentPoolPerUser",
  BATON_AGENT_POOL_MAX: "agentPoolMax",
  BATON_IDEMPOTENCY_TTL_MS: "idempotencyTtlMs",
  BATON_IDEMPOTENCY_CLAIM_TIMEOUT_MS: "idempotencyClaimTimeoutMs",
  BATON_LOG_FORMAT: "logFormat",
  BATON_LOG_LEVEL: "logLevel",
  BATON_LEASE_MS: "leaseMs",
  BATON_LEASE_RENEW_MS: "leaseRenewMs",
  BATON_SWEEP_INTERVAL_MS: "sweepIntervalMs",
  BATON_POLL_INTERVAL_MS: "pollIntervalMs",
  BATON_CRON_POLL_MS: "cronPollMs",
  BATON_MAX_ATTEMPTS: "maxAttempts",
  BATON_RUN_TIMEOUT_MS: "runTimeoutMs",
  BATON_SHUTDOWN_GRACE_MS: "shutdownGraceMs",
  BATON_MAX_BODY_BYTES: "maxBodyBytes",
  BATON_KEEP_ALIVE_MS: "keepAliveMs",
  BATON_MAX_JSON_DEPTH: "maxJsonDepth",
  BATON_MAX_STRING_LENGTH: "maxStringLength",
  BATON_MAX_OBJECT_KEYS: "maxObjectKeys",
  BATON_MAX_IDS_PER_REQUEST: "maxIdsPerRequest",
  BATON_MAX_FILTER_KEYS: "maxFilterKeys",
  BATON_STORE_EMBED_TIMEOUT_MS: "storeEmbedTimeoutMs",
  BATON_STORE_SEARCH_MAX_CANDIDATES: "storeSearchMaxCandidates",
  BATON_STORE_VECTOR_SEARCH: "storeVectorSearch",
  BATON_ALLOWED_HOSTS: "allowedHosts",
  BATON_WEBHOOK_ALLOW_PRIVATE: "webhookAllowPrivate",
  BATON_WEBHOOK_TIMEOUT_MS: "webhookTimeoutMs",
  BATON_WEBHOOK_ATTEMPTS: "webhookAttempts",
  BATON_STREAM_BUFFER_BYTES: "streamBufferBytes",
  BATON_EVENT_RETENTION_MS: "eventRetentionMs",
  BATON_THREAD_STREAM_MAX_EVENTS: "threadStreamMaxEvents",
  BATON_THREAD_STREAM_RETENTION_MS: "threadStreamRetentionMs",
  BATON_BUSY_TIMEOUT_MS: "busyTimeoutMs",
  BATON_ROLE: "role",
  BATON_API_KEYS: "apiKeys",
  BATON_ALLOW_UNAUTHENTICATED: "allowUnauthenticated",
  DATABASE_URL: "databaseUrl",
  BATON_DATABASE_URL: "databaseUrl",
  REDIS_URL: "redisUrl",
  BATON_REDIS_URL: "redisUrl",
  BATON_POOL_SIZE: "poolSize",
  BATON_MIGRATE: "migrate",
  BATON_REDIS_PREFIX: "redisPrefix",
  BATON_REDIS_MAX_LEN: "redisMaxLen",
};

/**
 * Whether graphs' runs are traced to LangSmith: LangChain traces them itself
 * when an API key is set and a tracing variable says "true" (the project's
 * env file is in the environment by then). Read when asked, for `/info`.
 */
export function langsmithTracing(env: NodeJS.ProcessEnv = process.env): boolean {
  const key = env.LANGSMITH_API_KEY || env.LANGCHAIN_API_KEY;
  const on = [env.LANGSMITH_TRACING, env.LANGSMITH_TRACING_V2, env.LANGCHAIN_TRACING_V2, env.LANGCHAIN_TRACING].some((v) => v?.toLowerCase() === "true");
  return Boolean(key) && on;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Builds the configuration; `env` defaults to the process environment.
 * Precedence: flags, then environment, then `commandDefaults` (what a command
 * such as `baton dev` prefers), then the schema's defaults.
 */
export function loadConfig(
  flags: Partial<Record<keyof Config, unknown>>,
  env: NodeJS.ProcessEnv = process.env,
  commandDefaults: Partial<Record<keyof Config, unknown>> = {},
): Config {
  const fromEnv: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV)) if (env[name] !== undefined && env[name] !== "") fromEnv[key] = env[name];
  const defined = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  const result = ConfigSchema.safeParse({ ...commandDefaults, ...fromEnv, ...defined });
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `option ${i.path.join(".")}: ${i.message}`).join("; "));
  }
  const config = { ...result.data, port: result.data.port ?? (result.data.role === "worker" ? WORKER_PORT : DEFAULT_PORT) };
  if (config.redisUrl !== undefined && config.databaseUrl === undefined) {
    throw new ConfigError("REDIS_URL is set but DATABASE_URL is not: Redis is only used with Postgres (scale-out). Set both, or neither for embedded SQLite.");
  }
  if (config.role !== "all" && (config.databaseUrl === undefined || config.redisUrl === undefined)) {
    throw new ConfigError(`--role ${config.role} needs DATABASE_URL and REDIS_URL: separate API and worker processes share Postgres and Redis.`);
  }
  if (config.databaseUrl !== undefined && typeof config.executionThreads === "number" && config.executionThreads > 0) {
    throw new ConfigError("--execution-threads is for embedded SQLite; with DATABASE_URL, run more worker processes (--role worker) instead.");
  }
  return Object.freeze(config);
}

/**
 * Execution threads this process starts: the option as given, or for `auto`
 * one per core but one (left to the HTTP thread), at most 4, when embedded.
 * Postgres mode executes on the event loop (more cores there mean more
 * worker processes).
 */
export function executionThreadCount(config: Config, cores = availableParallelism()): number {
  if (config.databaseUrl !== undefined) return 0;
  if (config.executionThreads === "auto") return Math.min(4, Math.max(0, cores - 1));
  return config.executionThreads;
}

/** Something about langgraph.json worth a log line at start (logged by the server, which has the logger). */
export interface ProjectNote {
  level: "debug" | "info" | "warn";
  msg: string;
  fields: Record<string, unknown>;
}

/** A graph to load: its id, `./file.ts:export` spec, and the description of its system assistant. */
export interface ProjectGraph {
  graphId: string;
  spec: string;
  description: string | null;
}

/** Default `config` and `context` of a graph's system assistant (LANGGRAPH_CONFIG). */
export interface GraphDefaults {
  config: Record<string, unknown>;
  context: Record<string, unknown>;
}

export interface LoadedProject {
  project: Project;
  /** Folder of langgraph.json; graph paths are relative to it. */
  baseDir: string;
  path: string;
  graphs: ProjectGraph[];
  /** Per graph id, from the LANGGRAPH_CONFIG environment variable. */
  graphDefaults: Record<string, GraphDefaults>;
  notes: ProjectNote[];
}

/**
 * Keys of the official schema that only the LangGraph CLI's image build
 * reads (Dockerfile, base image, Python or Node packages to install). Baton
 * serves the project as installed, so they are accepted and noted.
 */
const BUILD_ONLY = [
  "node_version",
  "python_version",
  "dependencies",
  "dockerfile_lines",
  "docker_compose_file",
  "base_image",
  "image_distro",
  "api_version",
  "pip_config_file",
  "pip_installer",
  "keep_pkg_tools",
  "node_loader",
  "_INTERNAL_docker_tag",
];

/** Keys whose meaning Baton does not provide yet: serving without them would silently change what the project asked for. */
const REFUSED: Record<string, string> = {
  encryption: "custom at-rest encryption is not supported. Remove 'encryption' to store data unencrypted",
  webhooks: "webhook URL policies and headers are not supported yet. Remove 'webhooks' (run webhooks are still sent, without them)",
};

/** Every top-level key Baton knows: implemented, build-only or refused. `$schema` is the editor's schema reference. */
const KNOWN = new Set(["$schema", "graphs", "env", "http", "auth", "checkpointer", "store", "ui", "ui_config", ...BUILD_ONLY, ...Object.keys(REFUSED)]);

const isSet = (value: unknown) => value !== undefined && value !== null;

/**
 * Refuses the keys Baton cannot honour, naming them; notes the build-only
 * and unknown ones (the official CLI drops unknown keys silently; a warning
 * catches a typo such as "graph").
 */
function reviewProject(raw: Record<string, unknown>, path: string): ProjectNote[] {
  const present = (key: string) => {
    const [top, sub] = key.split(".") as [string, string | undefined];
    const value = raw[top];
    return sub === undefined ? isSet(value) : typeof value === "object" && value !== null && isSet((value as Record<string, unknown>)[sub]);
  };
  const refused = Object.keys(REFUSED).filter(present);
  if (refused.length > 0) throw new ConfigError(`${path}: ${refused.map((key) => `'${key}': ${REFUSED[key]}`).join("; ")}.`);
  if (Array.isArray(raw.env)) {
    throw new ConfigError(`${path}: 'env' as a list (the platform's secret storage) is not supported: give a path to a .env file, or an object of variables.`);
  }
  const notes: ProjectNote[] = [];
  const build = BUILD_ONLY.filter((key) => key in raw);
  if (build.length > 0) {
    notes.push({ level: "info", msg: "project:build-keys-ignored", fields: { keys: build, reason: "read only when building a container image; Baton serves the project as installed" } });
  }
  // The line the LangGraph CLI builds the project's image on: a project declared for another line than the one running it may use what this one lacks.
  const declared = typeof raw.node_version === "string" || typeof raw.node_version === "number" ? String(raw.node_version) : undefined;
  if (declared !== undefined && declared.split(".")[0] !== process.versions.node.split(".")[0]) {
    notes.push({
      level: "warn",
      msg: "project:node-version-differs",
      fields: { node_version: declared, running: process.version, detail: `langgraph.json declares Node ${declared}; run Baton on that line, or change node_version (docs/node-lines.md)` },
    });
  }
  const checkpointer = raw.checkpointer;
  if (typeof checkpointer === "object" && checkpointer !== null && isSet((checkpointer as Record<string, unknown>).serde)) {
    notes.push({ level: "info", msg: "project:key-ignored", fields: { key: "checkpointer.serde", reason: "configures the Python server's deserializer; JS checkpoints need none" } });
  }
  const unknown = [
    ...Object.keys(raw).filter((key) => !KNOWN.has(key)),
    ...(["store", "checkpointer"] as const).flatMap((section) => {
      const value = raw[section];
      const known = section === "store" ? ["index", "ttl"] : ["path", "ttl", "serde"];
      return typeof value === "object" && value !== null ? Object.keys(value).filter((key) => !known.includes(key)).map((key) => `${section}.${key}`) : [];
    }),
  ];
  if (unknown.length > 0) notes.push({ level: "warn", msg: "project:unknown-keys", fields: { keys: unknown, detail: "not in the official langgraph.json schema; ignored" } });
  return notes;
}

const GraphConfigSchema = z.record(z.string(), z.record(z.string(), z.unknown()));

/**
 * LANGGRAPH_CONFIG: JSON of per-graph defaults for the system assistants, as
 * the official server reads it: `{"<graph id>": {"context": {...}, ...config}}`
 * (everything but `context` is the assistant's `config`).
 */
function graphDefaultsFrom(text: string | undefined, graphIds: string[], notes: ProjectNote[]): Record<string, GraphDefaults> {
  if (text === undefined || text === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`LANGGRAPH_CONFIG is not valid JSON: ${(error as Error).message}`);
  }
  const result = GraphConfigSchema.safeParse(parsed);
  if (!result.success) {
    throw new ConfigError(`LANGGRAPH_CONFIG must be an object of graph ids to objects ({"<graph id>": {"configurable": {...}, "context": {...}}}): ${result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`);
  }
  const defaults: Record<string, GraphDefaults> = {};
  for (const [graphId, { context, ...config }] of Object.entries(result.data)) {
    if (context !== undefined && (typeof context !== "object" || context === null || Array.isArray(context))) {
      throw new ConfigError(`LANGGRAPH_CONFIG: '${graphId}.context' must be an object.`);
    }
    defaults[graphId] = { config, context: (context ?? {}) as Record<string, unknown> };
  }
  const strangers = Object.keys(defaults).filter((id) => !graphIds.includes(id));
  if (strangers.length > 0) notes.push({ level: "warn", msg: "project:langgraph-config-unknown-graphs", fields: { graphs: strangers, known: graphIds } });
  return defaults;
}

/** Reads and validates langgraph.json, and applies its `env` to the process environment. */
export function loadProject(configPath: string, env: NodeJS.ProcessEnv = process.env): LoadedProject {
  const path = resolve(configPath);
  if (!existsSync(path)) throw new ConfigError(`No ${configPath} found (looked at ${path}). Pass --config <path to langgraph.json>.`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new ConfigError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ConfigError(`${path} must hold a JSON object.`);
  const notes = reviewProject(raw as Record<string, unknown>, path);
  const result = ProjectSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(`${path} is invalid: ${result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`);
  }
  const baseDir = dirname(path);
  const project = result.data;
  if (typeof project.env === "string") {
    const envPath = resolve(baseDir, project.env);
    // As the dev server does: templates ship only .env.example.
    if (existsSync(envPath)) {
      for (const [key, value] of Object.entries(parseEnv(readFileSync(envPath, "utf8")))) env[key] ??= value;
    } else {
      notes.push({ level: "warn", msg: "project:env-file-missing", fields: { path: envPath, detail: `named by 'env' in ${path}; continuing without it` } });
    }
  } else if (project.env !== undefined && project.env !== null) {
    for (const [key, value] of Object.entries(project.env)) env[key] ??= value;
  }
  const entries = (raw as { graphs: Record<string, string | { description?: string | null }> }).graphs;
  const graphs = Object.entries(project.graphs).map(([graphId, spec]) => {
    const entry = entries[graphId];
    return { graphId, spec, description: typeof entry === "object" ? (entry.description ?? null) : null };
  });
  const graphDefaults = graphDefaultsFrom(env.LANGGRAPH_CONFIG, Object.keys(project.graphs), notes);
  return { project, baseDir, path, graphs, graphDefaults, notes };
}
