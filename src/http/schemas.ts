/**
 * The wire contract's request bodies as zod schemas, validated at the edge.
 * Field names and defaults follow the official OpenAPI description.
 */
import { z } from "zod";
import { StreamModes } from "../core/types.ts";

const jsonObject = z.record(z.string(), z.unknown());
const configSchema = z
  .object({
    tags: z.array(z.string()).optional(),
    recursion_limit: z.number().int().positive().optional(),
    configurable: jsonObject.optional(),
  })
  .catchall(z.unknown());
const ifExists = z.enum(["raise", "do_nothing"]);
const limit = (max: number, fallback: number) => z.coerce.number().int().min(1).max(max).default(fallback);
const offset = z.coerce.number().int().min(0).default(0);
const order = z.enum(["asc", "desc"]).optional();
const uuid = z.string().uuid();

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
  metadata: jsonObject.optional(),
  limit: limit(1000, 10),
  offset,
  sort_by: z.enum(["assistant_id", "graph_id", "name", "created_at", "updated_at"]).optional(),
  sort_order: order,
  select: z.array(z.string()).optional(),
});
export const AssistantCount = z.object({ graph_id: z.string().optional(), name: z.string().optional(), metadata: jsonObject.optional() });
export const AssistantVersions = z.object({ metadata: jsonObject.optional(), limit: limit(1000, 10), offset });
export const SetLatest = z.object({ version: z.coerce.number().int().min(1) });

const threadStatus = z.enum(["idle", "busy", "interrupted", "error"]);
export const ThreadCreate = z.object({
  thread_id: uuid.optional(),
  metadata: jsonObject.default({}),
  if_exists: ifExists.default("raise"),
  graph_id: z.string().optional(),
  supersteps: z
    .array(z.object({ updates: z.array(z.object({ values: z.unknown(), as_node: z.string(), command: z.unknown().optional() })) }))
    .optional(),
  ttl: z.unknown().optional(),
});
export const ThreadPatch = z.object({ metadata: jsonObject.default({}), ttl: z.unknown().optional() });
export const ThreadSearch = z.object({
  ids: z.array(z.string()).optional(),
  metadata: jsonObject.optional(),
  values: jsonObject.optional(),
  status: threadStatus.optional(),
  limit: limit(1000, 10),
  offset,
  sort_by: z.enum(["thread_id", "status", "created_at", "updated_at"]).optional(),
  sort_order: order,
  select: z.array(z.string()).optional(),
});
export const ThreadPrune = z.object({ thread_ids: z.array(uuid).max(1000), strategy: z.enum(["delete", "keep_latest"]).default("delete") });
export const ThreadCount = z.object({ metadata: jsonObject.optional(), values: jsonObject.optional(), status: threadStatus.optional() });

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
  metadata: jsonObject.optional(),
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
  webhook: z.string().max(2048).nullable().optional(),
  durability: z.enum(["sync", "async", "exit"]).nullable().optional(),
  checkpoint_during: z.boolean().nullable().optional(),
  feedback_keys: z.array(z.string()).nullable().optional(),
  langsmith_tracer: z.unknown().optional(),
  strict_resume: z.boolean().nullable().optional(),
  stream_mode_options: z.unknown().optional(),
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
  run_ids: z.array(z.string()).optional(),
  status: z.enum(["pending", "running", "all"]).optional(),
});

const namespace = z.array(z.string().min(1).max(256).refine((label) => !label.includes(".") && !label.includes("\u001f"), {
  message: "namespace labels must not contain '.' or control separators",
}));
export const StorePut = z.object({ namespace: namespace.min(1), key: z.string().min(1).max(1024), value: jsonObject, index: z.unknown().optional(), ttl: z.unknown().optional() });
export const StoreDelete = z.object({ namespace: namespace.min(1), key: z.string().min(1) });
export const StoreSearch = z.object({
  namespace_prefix: namespace.default([]),
  filter: jsonObject.nullable().optional(),
  limit: limit(1000, 10),
  offset,
  query: z.string().nullable().optional(),
  refresh_ttl: z.boolean().nullable().optional(),
});
export const StoreNamespaces = z.object({
  prefix: z.array(z.string()).nullable().optional(),
  suffix: z.array(z.string()).nullable().optional(),
  max_depth: z.number().int().min(1).nullable().optional(),
  limit: limit(1000, 100),
  offset,
});
