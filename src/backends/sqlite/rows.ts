/** Row <-> record mapping for the embedded schema. */
import type { Database } from "better-sqlite3";
import { contains, fieldsOf, satisfies, type FieldReader, type FilterCondition } from "../../core/filter.ts";
import { compileFilter } from "../filter-sql.ts";
import type { Assistant, Run, StoreItem, Thread } from "../../core/types.ts";
import { ttlInfo, type TtlColumns } from "./thread-prune.ts";

export { decodeNamespace, encodeNamespace } from "../namespaces.ts";
import { decodeNamespace } from "../namespaces.ts";

export const json = (value: unknown): string => JSON.stringify(value ?? null);
export const parse = <T>(text: string | null): T => (text === null ? (null as T) : (JSON.parse(text) as T));

export interface AssistantRow {
  assistant_id: string;
  graph_id: string;
  name: string;
  description: string | null;
  config: string;
  context: string;
  metadata: string;
  version: number;
  created_at: string;
  updated_at: string;
}
export const toAssistant = (row: AssistantRow): Assistant => ({
  assistant_id: row.assistant_id,
  graph_id: row.graph_id,
  config: parse(row.config),
  context: parse(row.context),
  metadata: parse(row.metadata),
  name: row.name,
  description: row.description,
  version: row.version,
  created_at: row.created_at,
  updated_at: row.updated_at,
});

export interface ThreadRow {
  thread_id: string;
  created_at: string;
  updated_at: string;
  metadata: string;
  status: Thread["status"];
  values: string | null;
  interrupts: string;
  config: string;
  error: string | null;
  ttl_strategy: TtlColumns["ttl_strategy"];
  ttl_minutes: number | null;
  ttl_expires_ms: number | null;
}
export const toThread = (row: ThreadRow): Thread => ({
  thread_id: row.thread_id,
  created_at: row.created_at,
  updated_at: row.updated_at,
  metadata: parse(row.metadata),
  status: row.status,
  values: parse(row.values),
  interrupts: parse(row.interrupts),
  config: parse(row.config),
  error: parse(row.error),
  ttl: ttlInfo(row),
});

export interface RunRow {
  seq: number;
  run_id: string;
  thread_id: string;
  assistant_id: string;
  graph_id: string;
  status: Run["status"];
  metadata: string;
  multitask_strategy: Run["multitask_strategy"];
  kwargs: string;
  attempt: number;
  lease_owner: string | null;
  lease_expires_ms: number | null;
  cancel_action: Run["cancel_action"];
  available_at_ms: number;
  error: string | null;
  output: string | null;
  owner: string | null;
  created_at: string;
  updated_at: string;
}
export const toRun = (row: RunRow): Run => ({
  run_id: row.run_id,
  thread_id: row.thread_id,
  assistant_id: row.assistant_id,
  graph_id: row.graph_id,
  created_at: row.created_at,
  updated_at: row.updated_at,
  status: row.status,
  metadata: parse(row.metadata),
  multitask_strategy: row.multitask_strategy,
  kwargs: parse(row.kwargs),
  attempt: row.attempt,
  cancel_action: row.cancel_action,
  available_at_ms: row.available_at_ms,
  error: row.error,
  output: parse(row.output),
  owner: row.owner,
});

export interface ItemRow {
  namespace: string;
  key: string;
  value: string;
  created_at: string;
  updated_at: string;
}
export const toItem = (row: ItemRow): StoreItem => ({
  namespace: decodeNamespace(row.namespace),
  key: row.key,
  value: parse(row.value),
  created_at: row.created_at,
  updated_at: row.updated_at,
});

/**
 * The SQL condition matching a JSON column against a client's containment
 * filter, none for an absent or empty filter (src/backends/filter-sql.ts
 * compiles it).
 */
export function jsonContains(column: string, filter: Record<string, unknown> | null | undefined, args: unknown[]): string[] {
  return compileFilter("sqlite", column, { contains: filter }, args);
}

/**
 * The SQL condition "`column` is one of `values`", for lists of any length:
 * one parameter (a JSON array) whatever the count, so 40,000 ids never meet
 * SQLite's limit on variables or expression depth.
 */
export function inList(column: string, values: readonly string[], args: unknown[]): string {
  args.push(JSON.stringify(values));
  return `${column} IN (SELECT value FROM json_each(?))`;
}

/** A store item's access document: its value's fields, with `namespace` (the labels) and `key` its own. */
const itemFields = (value: unknown, namespace: string, key: string): FieldReader => {
  const fields = fieldsOf(value);
  return (name) => {
    if (name === "namespace") return { present: true, value: decodeNamespace(namespace) };
    if (name === "key") return { present: true, value: key };
    return fields(name);
  };
};

/**
 * Registers the functions Baton's SQL uses on a connection (the SQL that
 * calls them comes from src/backends/filter-sql.ts): `baton_contains`
 * (a client's containment filter), `baton_filter` and `baton_item_filter`
 * (an access filter's checked conditions, on a JSON column or a store item).
 * Each answers 0 rather than failing on text that is not JSON (or NULL), so
 * no stored record can break a query for anyone.
 */
export function registerFunctions(db: Database): void {
  // A statement passes the same filter text for every row (a search may pass
  // three: metadata, values and access); each is parsed once, not once per row.
  const filters = new Map<string, unknown>();
  const parsedFilter = (text: string): unknown => {
    if (filters.has(text)) return filters.get(text);
    if (filters.size >= 8) filters.clear();
    const filter: unknown = JSON.parse(text);
    filters.set(text, filter);
    return filter;
  };
  db.function("baton_filter", { deterministic: true }, (document: unknown, conditionsText: unknown) => {
    if (typeof document !== "string" || typeof conditionsText !== "string") return 0;
    try {
      const conditions = parsedFilter(conditionsText) as FilterCondition[];
      return satisfies(fieldsOf(JSON.parse(document)), conditions) ? 1 : 0;
    } catch {
      return 0;
    }
  });
  db.function("baton_item_filter", { deterministic: true }, (value: unknown, namespace: unknown, key: unknown, conditionsText: unknown) => {
    if (typeof value !== "string" || typeof namespace !== "string" || typeof key !== "string" || typeof conditionsText !== "string") return 0;
    try {
      const conditions = parsedFilter(conditionsText) as FilterCondition[];
      return satisfies(itemFields(JSON.parse(value), namespace, key), conditions) ? 1 : 0;
    } catch {
      return 0;
    }
  });
  db.function("baton_contains", { deterministic: true }, (document: unknown, filterText: unknown) => {
    if (typeof document !== "string" || typeof filterText !== "string") return 0;
    try {
      const filter = parsedFilter(filterText);
      return contains(JSON.parse(document), filter) ? 1 : 0;
    } catch {
      return 0;
    }
  });
}

/** Deletes a thread with its checkpoints and pending writes (its runs and crons go by ON DELETE CASCADE). Call inside a transaction. */
export function deleteThreadRows(db: Database, threadId: string): void {
  deleteThreadsRows(db, [threadId]);
}

/** `deleteThreadRows` for several threads. */
export function deleteThreadsRows(db: Database, threadIds: readonly string[]): void {
  for (const table of ["checkpoint_writes", "checkpoints", "threads"]) {
    const args: unknown[] = [];
    db.prepare(`DELETE FROM ${table} WHERE ${inList("thread_id", threadIds, args)}`).run(...args);
  }
}
