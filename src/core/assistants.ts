/**
 * Assistant ids: every graph has a system assistant whose id is the UUIDv5
 * of the graph id in the namespace the official server uses, and a graph id
 * is accepted wherever an assistant id is.
 */
import { v5 as uuidv5 } from "uuid";
import { conflict, notFound } from "./errors.ts";
import type { Assistants, Scoped } from "./ports.ts";
import type { Assistant } from "./types.ts";

export const SYSTEM_ASSISTANT_NAMESPACE = "6ba7b821-9dad-11d1-80b4-00c04fd430c8";

export const systemAssistantId = (graphId: string): string => uuidv5(graphId, SYSTEM_ASSISTANT_NAMESPACE);

/** Finds an assistant by id, or a graph's system assistant by graph id; one outside `scope` is not found. */
export async function resolveAssistant(assistants: Assistants, graphIds: readonly string[], idOrGraph: string, scope?: Scoped): Promise<Assistant> {
  const direct = await assistants.get(idOrGraph, scope);
  if (direct !== null) return direct;
  if (graphIds.includes(idOrGraph)) {
    const system = await assistants.get(systemAssistantId(idOrGraph), scope);
    if (system !== null) return system;
  }
  throw notFound("Assistant", idOrGraph);
}

/** The assistant id a request meant: graph ids map to their system assistant. */
export const assistantIdFor = (graphIds: readonly string[], idOrGraph: string): string =>
  graphIds.includes(idOrGraph) ? systemAssistantId(idOrGraph) : idOrGraph;

/** The graph whose system assistant `assistantId` is, if it is one. */
export const systemAssistantGraph = (graphIds: readonly string[], assistantId: string): string | undefined =>
  graphIds.find((graphId) => systemAssistantId(graphId) === assistantId);

/**
 * A graph's system assistant is what its graph id means as an assistant id
 * (runs, threads, Studio): it is never deleted, or every run on the graph
 * would answer 404 until a restart recreated it. Refused with 409 (an
 * assistant of one's own for the graph can be deleted). Patching it is
 * allowed, as on the official server: it gains a version.
 */
export function refuseSystemAssistantDelete(graphIds: readonly string[], assistantId: string): void {
  const graphId = systemAssistantGraph(graphIds, assistantId);
  if (graphId === undefined) return;
  throw conflict(
    `Assistant '${assistantId}' is the built-in assistant of graph '${graphId}' (created from langgraph.json); it cannot be deleted. ` +
      `Create an assistant of your own for the graph (POST /assistants) to have one you can delete.`,
  );
}
