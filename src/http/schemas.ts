/**
 * The wire contract's request bodies as zod schemas, validated at the edge.
 * Field names and defaults follow the official OpenAPI description.
 */
import { z } from "zod";
import { MAX_PRIORITY, MIN_PRIORITY } from "../core/admission.ts";
import { MAX_TTL_MINUTES, MIN_TTL_MINUTES, type ThreadTtl } from "../core/thread-ttl.ts";
import { StreamModes } from "../core/types.ts";
import { parseExtractPath } from "./records.ts";

const jsonObject = z.record(z.string(), z.unknown());
const configSchema = z
  .object({
    tags: z.array(z.string()).optional(),
    recursion_limit: z.number().int().positive().optional(),
    configurable: jsonObject.optional(),
  })
  .catchall(z.unknown());
const ifExists = z.enum(["raise", "do_nothing"]);

/**
 * What one parse is checking, set by validate.ts around a single synchronous
 * `safeParse` (zod parses synchronously, so no other request can see it):
 * whether the value is a JSON body (its numbers must be numbers) or query
 * strings (numbers arrive as text and are read as numbers, as before), and
 * the per-request limits on id lists and filters (undefined: not checked,
 * because the value was checked when its body was read).
 */
export interface ParseScope {
  fromJson: boolean;
  limits: { maxIdsPerRequest: number; maxFilterKeys: number } | undefined;
}
let scope: ParseScope = { fromJson: false, limits: undefined };

export function inScope<T>(next: ParseScope, run: () => T): T {
  const previous = scope;
  scope = next;
  try {
    return run();
  } finally {
    scope = previous;
  }
}

/** Numbers are JSON numbers in a body (`"5"` and `true` are refused); in a query string they arrive as text. */
const fromQuery = (value: unknown) => (!scope.fromJson && typeof value === "string" ? Number(value) : value);
const limit = (max: number, fallback: number) => z.preprocess(fromQuery, z.number().int().min(1).max(max)).default(fallback);
const offset = z.preprocess(fromQuery, z.number().int().min(0)).default(0);
const order = z.enum(["asc", "desc"]).optional();
const uuid = z.string().uuid();
/** A UUID in any case, as path parameters accept them. */
const anyUuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, "must be a UUID");

/** A list of ids, at most `maxIdsPerRequest` long (checked before its items). */
const idList = <T extends z.ZodType>(item: T) =>
  z.preprocess((value, ctx) => {
    const max = scope.limits?.maxIdsPerRequest;
    if (max !== undefined && Array.isArray(value) && value.length > max) {
      ctx.addIssue({
        code: "custom",
        message: `${value.length} ids, more than the limit of ${max} per request (maxIdsPerRequest / BATON_MAX_IDS_PER_REQUEST); split the request.`,
      });
      return z.NEVER;
    }
    return value;
  }, z.array(item));

/** Keys of objects at every level plus items of lists, counting stops past `max`. */
function filterSize(value: unknown, max: number): number {
  let count = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && count <= max) {
    const v = stack.pop();
    if (typeof v !== "object" || v === null) continue;
    const children = Array.isArray(v) ? v : Object.values(v);
    count += children.length;
    for (const child of children) if (typeof child === "object" && child !== null) stack.push(child);
  }
  return count;
}

/** A metadata/values/store filter, at most `maxFilterKeys` keys counted at every level. */
const filter = jsonObject.superRefine((value, ctx) => {
  const max = scope.limits?.maxFilterKeys;
  if (max === undefined) return;
  if (filterSize(value, max) > max) {
    ctx.addIssue({
      code: "custom",
      message: `filter has more than ${max} keys, counted at every level with list items (maxFilterKeys / BATON_MAX_FILTER_KEYS); narrow it.`,
    });
  }
});

/**
 * A webhook at run creation: an absolute http: or https: URL, or a path
 * starting with "/" (delivered to the project's own http.app, see
 * docs/webhooks.md). Anything else (file:, ftp:, javascript:, "//host",
 * text that is not a URL) is refused.
 */
export function isWebhookUrl(value: string): boolean {
  // URL parsing drops tabs and newlines and trims spaces: refuse them instead.
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  if (/[\u0000-\u0020\u007f]/.test(value)) return false;
  if (value.startsWith("/")) {
    const base = "http://relative.invalid";
    try {
      // "//host" and "/\\host" would leave the project for another host.
      return new URL(value, base).host === "relative.invalid" && value[1] !== "/" && value[1] !== "\\";
    } catch {
      return false;
    }
  }
  if (!/^https?:\/\//i.test(value)) return false;
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "";
  } catch {
    return false;
  }
}
const webhook = z.string().max(2048).refine(isWebhookUrl, {
  message: "must be an absolute http:// or https:// URL, or a path starting with '/' (sent to the project's own http.app)",
});

export const AssistantCreate = z.object({
  assistant_id: uuid.optional(),
  graph_id: z.string().min(1),
  config: configSchema.default({}),
  context: jsonObject.default({}),
  metadata: jsonObject.default({}),
  if_exists: ifExists.default("raise"),
  name: z.string().optional(),
  description: z.string().nullable().optional(),
});

export const AssistantPatch = z.object({
  graph_id: z.string().min(1).optional(),
  config: configSchema.optional(),
  context: jsonObject.optional(),
  metadata: jsonObject.optional(),
  name: z.string().optional(),
  description: z.string().nullable().optional(),
});

export const AssistantSearch = z.object({
  graph_id: z.string().optional(),
  name: z.string().optional(),
  metadata: filter.optional(),
  limit: limit(1000, 10),
  offset,
  sort_by: z.enum(["assistant_id", "graph_id", "name", "created_at", "updated_at"]).optional(),
  sort_order: order,
  select: z.array(z.string()).optional(),
});
export const AssistantCount = z.object({ graph_id: z.string().optional(), name: z.string().optional(), metadata: filter.optional() });
export const AssistantVersions = z.object({ metadata: filter.optional(), limit: limit(1000, 10), offset });
export const SetLatest = z.object({ version: z.preprocess(fromQuery, z.number().int().min(1)) });

const threadStatus = z.enum(["idle", "busy", "interrupted", "error"]);
/**
 * A thread's TTL (docs/threads.md): `{"strategy": "delete" | "keep_latest",
 * "ttl": <minutes>}`, strategy `delete` by default. null is "not set" (on a
 * PATCH: leave the TTL as it is).
 */
const threadTtl = z
  .object(
    {
      strategy: z.enum(["delete", "keep_latest"]).default("delete"),
      ttl: z
        .number({ error: "ttl.ttl is required: the minutes of inactivity after which the thread is swept" })
        .min(MIN_TTL_MINUTES, `ttl.ttl must be at least ${MIN_TTL_MINUTES} minutes`)
        .max(MAX_TTL_MINUTES, `ttl.ttl may be ${MAX_TTL_MINUTES} minutes (100 years) at most`),
    },
    { error: 'ttl must be an object: {"strategy": "delete" or "keep_latest", "ttl": <minutes>}' },
  )
  .nullable()
  .optional()
  .transform((value): ThreadTtl | undefined => (value === null || value === undefined ? undefined : { strategy: value.strategy, minutes: value.ttl }));
export const ThreadCreate = z.object({
  thread_id: uuid.optional(),
  metadata: jsonObject.default({}),
  if_exists: ifExists.default("raise"),
  graph_id: z.string().optional(),
  supersteps: z
    .array(z.object({ updates: z.array(z.object({ values: z.unknown().optional(), as_node: z.string(), command: z.unknown().optional() })) }))
    .optional(),
  ttl: threadTtl,
});
export const ThreadPatch = z.object({ metadata: jsonObject.default({}), ttl: threadTtl });
/** `GET /threads/{id}?include=ttl`: comma-separated (the contract) or repeated (what the SDK sends for a list). */
export const ThreadGetQuery = z.object({
  include: z
    .array(z.string())
    .default([])
    .transform((values) => values.flatMap((value) => value.split(",")).map((value) => value.trim()).filter((value) => value !== ""))
    .pipe(z.array(z.enum(["ttl"], { error: "include: the supported value is ttl" }))),
});
export const ThreadSearch = z.object({
  ids: idList(anyUuid).optional(),
  metadata: filter.optional(),
  values: filter.optional(),
  status: threadStatus.optional(),
  limit: limit(1000, 10),
  offset,
  sort_by: z.enum(["thread_id", "status", "created_at", "updated_at"]).optional(),
  sort_order: order,
  select: z.array(z.string()).optional(),
  /** Alias to path (`values.messages[-1]`); each thread gets `extracted: {alias: value}`. */
  extract: z
    .record(z.string(), z.string())
    .refine((map) => Object.keys(map).length <= 10, { message: "at most 10 paths" })
    .superRefine((map, ctx) => {
      for (const [alias, path] of Object.entries(map)) {
        const steps = parseExtractPath(path);
        if (typeof steps === "string") ctx.addIssue({ code: "custom", path: [alias], message: steps });
      }
    })
    .nullable()
    .optional(),
});
export const ThreadPrune = z.object({ thread_ids: idList(uuid), strategy: z.enum(["delete", "keep_latest"]).default("delete") });
export const ThreadCount = z.object({ metadata: filter.optional(), values: filter.optional(), status: threadStatus.optional() });

const checkpointRef = z.object({
  checkpoint_id: z.string().optional(),
  checkpoint_ns: z.string().optional(),
  thread_id: z.string().optional(),
  checkpoint_map: z.unknown().optional(),
});
export const StateUpdate = z.object({
  values: z.unknown().optional(),
  as_node: z.string().optional(),
  checkpoint: checkpointRef.optional(),
  checkpoint_id: z.string().optional(),
});
export const StateAtCheckpoint = z.object({ checkpoint: checkpointRef, subgraphs: z.boolean().optional() });
export const HistoryQuery = z.object({
  limit: limit(1000, 10),
  before: z.union([checkpointRef, z.string()]).optional(),
  metadata: filter.optional(),
  checkpoint: checkpointRef.optional(),
});

const streamMode = z.enum(StreamModes);
const interruptNodes = z.union([z.literal("*"), z.array(z.string())]);

export const RunCreate = z.object({
  assistant_id: z.string().min(1),
  input: z.unknown().optional(),
  command: z
    .object({ resume: z.unknown().optional(), update: z.unknown().optional(), goto: z.unknown().optional() })
    .nullable()
    .optional(),
  config: configSchema.optional(),
  context: jsonObject.nullable().optional(),
  metadata: jsonObject.nullable().optional(),
  stream_mode: z.union([streamMode, z.array(streamMode)]).optional(),
  stream_subgraphs: z.boolean().optional(),
  stream_resumable: z.boolean().optional(),
  interrupt_before: interruptNodes.nullable().optional(),
  interrupt_after: interruptNodes.nullable().optional(),
  checkpoint_id: z.string().nullable().optional(),
  checkpoint: checkpointRef.nullable().optional(),
  multitask_strategy: z.enum(["reject", "enqueue", "interrupt", "rollback"]).optional(),
  if_not_exists: z.enum(["create", "reject"]).optional(),
  on_disconnect: z.enum(["cancel", "continue"]).optional(),
  on_completion: z.enum(["delete", "keep"]).optional(),
  after_seconds: z.number().min(0).max(31_536_000).optional(),
  webhook: webhook.nullable().optional(),
  durability: z.enum(["sync", "async", "exit"]).nullable().optional(),
  checkpoint_during: z.boolean().nullable().optional(),
  feedback_keys: z.array(z.string()).nullable().optional(),
  langsmith_tracer: z.unknown().optional(),
  strict_resume: z.boolean().nullable().optional(),
  stream_mode_options: z.unknown().optional(),
  /** Baton extension: claim order across threads, higher first (docs/scheduling.md). */
  priority: z.number().int().min(MIN_PRIORITY).max(MAX_PRIORITY).optional(),
});
export type RunCreate = z.infer<typeof RunCreate>;

export const RunList = z.object({
  limit: limit(1000, 10),
  offset,
  status: z.enum(["pending", "running", "success", "error", "timeout", "interrupted"]).optional(),
});

export const CancelAction = z.enum(["interrupt", "rollback"]).default("interrupt");

export const RunsCancel = z.object({
  thread_id: z.string().optional(),
  run_ids: idList(anyUuid).optional(),
  status: z.enum(["pending", "running", "all"]).optional(),
});

/** The longest store item TTL accepted: 100 years, so an expiry time stays a safe integer of milliseconds. */
const STORE_TTL_MAX_MINUTES = 52_560_000;
const namespace = z.array(z.string().min(1).max(256).refine((label) => !label.includes(".") && !label.includes("\u001f"), {
  message: "namespace labels must not contain '.' or control separators",
}));
export const StorePut = z.object({
  namespace: namespace.min(1),
  key: z.string().min(1).max(1024),
  value: jsonObject,
  /** false: not embedded; a list of JSON paths: embed these instead of store.index.fields; null or absent: store.index.fields. */
  index: z
    .union([z.literal(false), z.array(z.string().min(1).max(1024)).max(100)], { error: "index must be false, null, or a list of field paths to embed" })
    .nullable()
    .optional(),
  /** Minutes the item lives after its last write (or refreshing read); null: never expires; absent: store.ttl.default_ttl. */
  ttl: z
    .number({ error: "ttl must be a number of minutes, or null for no expiry" })
    .positive("ttl must be more than 0 minutes (or null for no expiry)")
    .max(STORE_TTL_MAX_MINUTES, `ttl may be ${STORE_TTL_MAX_MINUTES} minutes (100 years) at most`)
    .nullable()
    .optional(),
});
/** `GET /store/items`: `refresh_ttl` as a query string carries it (absent: store.ttl.refresh_on_read). */
export const StoreGetQuery = z.object({
  refresh_ttl: z
    .enum(["true", "false"], { error: "refresh_ttl must be true or false" })
    .optional()
    .transform((value) => (value === undefined ? undefined : value === "true")),
});
export const StoreDelete = z.object({ namespace: namespace.min(1), key: z.string().min(1) });
export const StoreSearch = z.object({
  namespace_prefix: namespace.default([]),
  filter: filter.nullable().optional(),
  limit: limit(1000, 10),
  offset,
  query: z.string({ error: "query must be a string (the text to search for)" }).max(10_000).nullable().optional(),
  refresh_ttl: z.boolean({ error: "refresh_ttl must be true, false or null" }).nullable().optional(),
});
export const StoreNamespaces = z.object({
  prefix: z.array(z.string()).nullable().optional(),
  suffix: z.array(z.string()).nullable().optional(),
  max_depth: z.number().int().min(1).nullable().optional(),
  limit: limit(1000, 100),
  offset,
});

/**
 * Crons (docs/crons.md). The run fields a cron's runs are created with,
 * checked as a run request's are; `schedule`, `timezone` and `end_time`
 * are checked by the cron service (a bad schedule is a 422 saying why).
 */
const cronRunFields = {
  input: z.union([jsonObject, z.array(jsonObject)]).nullable().optional(),
  config: configSchema.optional(),
  context: jsonObject.nullable().optional(),
  interrupt_before: interruptNodes.nullable().optional(),
  interrupt_after: interruptNodes.nullable().optional(),
  webhook: webhook.nullable().optional(),
  stream_mode: z.union([streamMode, z.array(streamMode)]).optional(),
  stream_subgraphs: z.boolean().optional(),
  stream_resumable: z.boolean().optional(),
  durability: z.enum(["sync", "async", "exit"]).nullable().optional(),
  checkpoint_during: z.boolean().nullable().optional(),
  /** Baton extension: claim order of the cron's runs (default CRON_PRIORITY, docs/scheduling.md). */
  priority: z.number().int().min(MIN_PRIORITY).max(MAX_PRIORITY).optional(),
};
const cronSchedule = z.string().min(1).max(256);
const timezone = z.string().min(1).max(100);
const endTime = z.string().datetime({ offset: true, message: "must be an ISO 8601 date-time with a timezone, e.g. 2030-01-01T00:00:00Z" });
const onRunCompleted = z.enum(["delete", "keep"]);

export const CronCreate = z.object({
  assistant_id: z.string().min(1),
  schedule: cronSchedule,
  timezone: timezone.nullable().optional(),
  end_time: endTime.nullable().optional(),
  enabled: z.boolean().nullable().optional(),
  on_run_completed: onRunCompleted.nullable().optional(),
  metadata: jsonObject.nullable().optional(),
  multitask_strategy: z.enum(["reject", "enqueue", "interrupt", "rollback"]).nullable().optional(),
  ...cronRunFields,
});
export type CronCreate = z.infer<typeof CronCreate>;

export const CronPatch = z.object({
  schedule: cronSchedule.optional(),
  timezone: timezone.nullable().optional(),
  end_time: endTime.nullable().optional(),
  enabled: z.boolean().optional(),
  on_run_completed: onRunCompleted.optional(),
  metadata: jsonObject.optional(),
  ...cronRunFields,
});
export type CronPatch = z.infer<typeof CronPatch>;

export const CRON_FIELDS = [
  "cron_id",
  "assistant_id",
  "thread_id",
  "on_run_completed",
  "end_time",
  "schedule",
  "timezone",
  "created_at",
  "updated_at",
  "user_id",
  "payload",
  "next_run_date",
  "metadata",
  "enabled",
] as const;
export const CronSearch = z.object({
  assistant_id: z.string().min(1).optional(),
  thread_id: anyUuid.optional(),
  enabled: z.boolean().optional(),
  metadata: filter.optional(),
  limit: limit(1000, 10),
  offset,
  sort_by: z.enum(["cron_id", "assistant_id", "thread_id", "next_run_date", "end_time", "created_at", "updated_at"]).optional(),
  sort_order: order,
  select: z.array(z.enum(CRON_FIELDS)).optional(),
});
export const CronCount = z.object({ assistant_id: z.string().min(1).optional(), thread_id: anyUuid.optional(), metadata: filter.optional() });
