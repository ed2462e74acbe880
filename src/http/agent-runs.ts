/**
 * Runs the MCP and A2A endpoints start on the caller's behalf: plain input,
 * no config of the caller's own, and the defaults a run request without
 * those fields gets. They go through RunService like any other run, so the
 * project's auth handlers decide and the caller owns them.
 */
import type { RequestContext } from "../core/context.ts";
import { coerceError } from "../core/errors.ts";
import type { CreateRunInput } from "../core/runs.ts";
import type { Assistant, StreamMode } from "../core/types.ts";
import type { HttpDeps } from "./deps.ts";
import { toCreateInput } from "./routes/runs.ts";

/**
 * A run of `assistantId` with `input` (or, to resume a graph stopped at
 * `interrupt()`, a `command`): on `threadId` (created if missing), or on a
 * temporary thread deleted after the run when it is null.
 */
export function agentRunInput(
  assistantId: string,
  input: unknown,
  threadId: string | null,
  streamMode: StreamMode[] = ["values"],
  command: { resume: unknown } | null = null,
  onDisconnect: "cancel" | "continue" = "continue",
): CreateRunInput {
  // Built as a run request with these fields would be, so the defaults are the run routes' own.
  const request = { assistant_id: assistantId, input: command === null ? input : null, command, stream_mode: streamMode, multitask_strategy: "enqueue", if_not_exists: "create", on_disconnect: onDisconnect } as const;
  return toCreateInput(request, threadId, { on_completion: threadId === null ? "delete" : "keep" });
}

/**
 * The request context a protocol request acts in: the caller's, without an
 * Idempotency-Key. Protocol clients send the same headers with every
 * request of a connection, so a key there would make every later tool call
 * or message answer with the first one's run.
 */
export const protocolContext = (ctx: RequestContext): RequestContext => ({ ...ctx, idempotencyKey: undefined });

/** The text of a run's failure (`{"__error__": {error, message}}`), or undefined when it did not fail. */
export function failureText(output: unknown): string | undefined {
  const failure = (output as { __error__?: { error?: unknown; message?: unknown } } | null | undefined)?.__error__;
  if (failure === undefined || failure === null) return undefined;
  const name = typeof failure.error === "string" ? failure.error : "Error";
  return typeof failure.message === "string" && failure.message !== "" ? `${name}: ${failure.message}` : name;
}

/** Input schemas built within one request: one build per (graph, configurable). */
export type SchemaCache = Map<string, Promise<Record<string, unknown> | undefined>>;

/**
 * The input schema of the assistant's graph (built with the assistant's
 * config), without waiting for the TypeScript compiler (GraphSchemas.rootNow);
 * undefined when there is none. With a cache, assistants of one graph and
 * configurable share one build.
 */
export function graphInputSchema(deps: HttpDeps, assistant: Assistant, cache?: SchemaCache): Promise<Record<string, unknown> | undefined> {
  const configurable = assistant.config.configurable ?? {};
  const key = `${assistant.graph_id}\u0000${JSON.stringify(configurable)}`;
  let schema = cache?.get(key);
  if (schema === undefined) {
    schema = buildInputSchema(deps, assistant.graph_id, configurable);
    cache?.set(key, schema);
  }
  return schema;
}

async function buildInputSchema(deps: HttpDeps, graphId: string, configurable: Record<string, unknown>): Promise<Record<string, unknown> | undefined> {
  const graph = await deps.registry.describe(graphId, { configurable });
  const schema = (await deps.schemas.rootNow(graphId, graph)).input as unknown;
  return schema !== null && typeof schema === "object" && !Array.isArray(schema) ? (schema as Record<string, unknown>) : undefined;
}

/**
 * The input schema, or undefined when it cannot be had (the graph's factory
 * or schema throws with this assistant's config): logged as a warning
 * naming the assistant, so one such assistant does not break a whole list.
 */
export async function inputSchemaOrUnknown(deps: HttpDeps, assistant: Assistant, where: string, cache?: SchemaCache): Promise<Record<string, unknown> | undefined> {
  try {
    return await graphInputSchema(deps, assistant, cache);
  } catch (error) {
    deps.logger.warn(`${where}:schema-failed`, { assistant_id: assistant.assistant_id, graph_id: assistant.graph_id, error: coerceError(error).message, detail: "its input schema is taken as unknown" });
    return undefined;
  }
}
