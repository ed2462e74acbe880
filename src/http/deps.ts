import type { AssistantService } from "../core/assistant-service.ts";
import type { CronService } from "../core/cron-service.ts";
import type { GraphSchemas } from "../core/graph-schemas.ts";
import type { GraphRegistry } from "../core/graphs.ts";
import type { Logger } from "../core/logger.ts";
import type { RunService } from "../core/runs.ts";
import type { StoreService } from "../core/store-service.ts";
import type { ThreadRecordService } from "../core/thread-records.ts";
import type { ThreadService } from "../core/threads.ts";
import type { Readiness } from "./routes/health.ts";
import type { RequestRecorder } from "./metrics.ts";
import type { UiBundles } from "./routes/ui.ts";

export interface RequestLimits {
  maxJsonDepth: number;
  maxStringLength: number;
  maxObjectKeys: number;
  maxIdsPerRequest: number;
  maxFilterKeys: number;
}

/**
 * What the routes are given: core services only, each taking the request
 * context and asking the Authorizer (docs/architecture.md, "The access
 * seam"); no storage port, no bus.
 */
export interface HttpDeps {
  assistantService: AssistantService;
  storeService: StoreService;
  /** Thread records: create, get, patch, delete, search, count, copy, prune. */
  threadRecords: ThreadRecordService;
  registry: GraphRegistry;
  /** Schemas of the graphs, extracted once and cached. */
  schemas: GraphSchemas;
  runs: RunService;
  /** Crons: create, get, patch, delete, search, count (docs/crons.md). */
  crons: CronService;
  threadService: ThreadService;
  /** Generative UI bundles by agent name (langgraph.json `ui`), built at start. */
  ui: UiBundles;
  logger: Logger;
  /** What `GET /ready` answers (src/http/routes/health.ts): the database, Redis, the schema, draining. */
  readiness: () => Promise<Readiness>;
  options: {
    /** Requests with a larger body are refused with 413. */
    maxBodyBytes: number;
    /** Interval of SSE keep-alive comments. */
    keepAliveMs: number;
    /** Limits on JSON request bodies and filters (docs/configuration.md, "Limits"). */
    limits: RequestLimits;
    /** Host names answered (lower case, no port; ".x" allows subdomains of x); null answers any. */
    allowedHosts: readonly string[] | null;
    /** Bytes of events a slow stream reader may have waiting before it is dropped. */
    streamBufferBytes: number;
    /** Webhook delivery policy; checked at run creation too. */
    webhooks: { allowPrivate: boolean };
    /** Without authentication: the request header naming the user a run counts against (option userHeader). */
    userHeader?: string | undefined;
    /** Told of every answered request: method, route template, status, seconds (src/http/metrics.ts); absent: not timed. */
    recordRequest?: RequestRecorder | undefined;
    version: string;
  };
}
