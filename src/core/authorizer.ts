/**
 * The Authorizer port: asked by the core services before every action on a
 * resource, with the request's context and the action's value, shaped as
 * the official `Auth` handlers see them (`@langchain/langgraph-sdk/auth`):
 *
 * - `resource` and `action` are the official ones (`assistants:create`,
 *   `store:list_namespaces`, `threads:create_run`, ...);
 * - `value` carries the same fields the official server hands its
 *   `on.<resource>.<action>` handlers; a handler may rewrite it (set
 *   `metadata.owner`, say) and the service acts on what comes back;
 * - `filter` restricts which records the action may touch: metadata (or,
 *   for the store, the item's value with `namespace` and `key`) must match
 *   it, or the record is not there for this caller (404 on a read, left out
 *   of a search);
 * - a denial (the official handler's `false`) throws `AccessDenied` (403).
 *
 * `NoAuthorizer` allows everything with no filter: the behaviour of a
 * server without `auth` in langgraph.json.
 */
import { contains } from "./filter.ts";
import type { RequestContext } from "./context.ts";
import type { Metadata } from "./types.ts";

/** Actions of each resource, as the official `Auth` handlers name them. */
export interface ResourceActions {
  assistants: "create" | "read" | "update" | "delete" | "search";
  threads: "create" | "read" | "update" | "delete" | "search" | "create_run";
  crons: "create" | "read" | "update" | "delete" | "search";
  store: "put" | "get" | "search" | "list_namespaces" | "delete";
}
export type Resource = keyof ResourceActions;

/**
 * An access filter as official handlers return it: per key, a value the
 * field must equal, `{$eq: v}` (the same), or `{$contains: v}` (the field
 * is a list holding v, or every element of v when v is a list).
 * Declared here until the shared `Filter` type lands in src/core/filter.ts.
 */
export type AccessFilter = Record<string, unknown>;

export interface Authorization<V> {
  /** The value to act on: the request's, or the handler's rewrite of it. */
  value: V;
  /** Records outside this filter do not exist for the caller; absent: no restriction. */
  filter?: AccessFilter | undefined;
}

export interface Authorizer {
  authorize<R extends Resource, V extends object>(ctx: RequestContext, resource: R, action: ResourceActions[R], value: V): Promise<Authorization<V>>;
}

/** Allows every action, rewrites nothing, filters nothing. */
export class NoAuthorizer implements Authorizer {
  authorize<R extends Resource, V extends object>(_ctx: RequestContext, _resource: R, _action: ResourceActions[R], value: V): Promise<Authorization<V>> {
    return Promise.resolve({ value });
  }
}

/** The caller may not take this action at all (HTTP 403). */
export class AccessDenied extends Error {
  readonly resource: Resource;
  readonly action: string;
  constructor(resource: Resource, action: string, message = `Not authorized to ${action} ${resource}.`) {
    super(message);
    this.name = "AccessDenied";
    this.resource = resource;
    this.action = action;
  }
}

/** Whether an authorization restricts anything. */
export const restricts = (filter: AccessFilter | undefined): filter is AccessFilter => filter !== undefined && Object.keys(filter).length > 0;

const isScalar = (value: unknown): boolean => value === null || ["string", "number", "boolean"].includes(typeof value);

/**
 * The access filter as a JSON containment filter (the semantics of
 * src/core/filter.ts and the backends' metadata filters): `k: v` and
 * `k: {$eq: v}` become `k: v` (a scalar equal by type and value),
 * `k: {$contains: v}` becomes `k: [v]` (or `k: v` for a list v). An operator
 * it cannot express is the handler's mistake, refused loudly.
 */
export function accessContainment(filter: AccessFilter): Record<string, unknown> {
  const containment: Record<string, unknown> = {};
  for (const [key, condition] of Object.entries(filter)) {
    if (isScalar(condition)) {
      containment[key] = condition;
      continue;
    }
    const operators = typeof condition === "object" && condition !== null && !Array.isArray(condition) ? Object.keys(condition) : [];
    const op = operators.length === 1 ? operators[0] : undefined;
    const operand = op === undefined ? undefined : (condition as Record<string, unknown>)[op];
    if (op === "$eq" && isScalar(operand)) containment[key] = operand;
    else if (op === "$contains" && (isScalar(operand) || Array.isArray(operand))) containment[key] = Array.isArray(operand) ? operand : [operand];
    else throw new Error(`Authorization filter for '${key}' is not supported: use a scalar, {$eq: scalar} or {$contains: scalar or list}; got ${JSON.stringify(condition)}.`);
  }
  return containment;
}

/** Whether a record's document (metadata, or a store item's value with namespace and key) is inside the filter. */
export const withinAccess = (document: unknown, filter: AccessFilter | undefined): boolean =>
  !restricts(filter) || contains(document ?? {}, accessContainment(filter));

/**
 * A metadata containment filter narrowed to the access filter as well, so
 * one query answers both; null when no record can satisfy both (the same
 * key asked to be two different scalars, or a scalar and a list).
 */
export function scopeMetadata(metadata: Metadata | undefined, filter: AccessFilter | undefined): Metadata | undefined | null {
  if (!restricts(filter)) return metadata;
  const scoped: Metadata = { ...(metadata ?? {}) };
  for (const [key, wanted] of Object.entries(accessContainment(filter))) {
    // Defined, not assigned: a key such as "__proto__" is a field like any other.
    const set = (value: unknown) => Object.defineProperty(scoped, key, { value, enumerable: true, writable: true, configurable: true });
    if (!Object.hasOwn(scoped, key)) {
      set(wanted);
      continue;
    }
    const asked = scoped[key];
    if (Array.isArray(asked) && Array.isArray(wanted)) set([...asked, ...wanted]);
    else if (!(isScalar(asked) && asked === wanted)) return null;
  }
  return scoped;
}
