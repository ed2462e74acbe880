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
import type { Principal, RequestContext } from "./context.ts";
import { BatonError, ErrorCode } from "./errors.ts";
import type { Filter } from "./filter.ts";

/** Actions of each resource, as the official `Auth` handlers name them. */
export interface ResourceActions {
  assistants: "create" | "read" | "update" | "delete" | "search";
  threads: "create" | "read" | "update" | "delete" | "search" | "create_run";
  crons: "create" | "read" | "update" | "delete" | "search";
  store: "put" | "get" | "search" | "list_namespaces" | "delete";
}
export type Resource = keyof ResourceActions;

export interface Authorization<V> {
  /** The value to act on: the request's, or the handler's rewrite of it. */
  value: V;
  /**
   * Records outside this access filter (src/core/filter.ts: the official
   * handlers' `{k: v}`, `$eq`, `$contains`, and `$in`) do not exist for the
   * caller; absent or empty: no restriction.
   */
  filter?: Filter | undefined;
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
export class AccessDenied extends BatonError {
  readonly resource: Resource;
  readonly action: string;
  constructor(resource: Resource, action: string, message = `Not authorized to ${action} ${resource}.`) {
    super(ErrorCode.forbidden, message);
    this.name = "AccessDenied";
    this.resource = resource;
    this.action = action;
  }
}

/** Whether an authorization restricts anything. */
export const restricts = (filter: Filter | undefined): filter is Filter => filter !== undefined && Object.keys(filter).length > 0;

/**
 * Who is calling: run once per request at the HTTP edge (but `/ok`,
 * `/info` and the generative UI bundles), before any route. Answers the
 * caller, or throws an `AuthFailure` (401 and a `WWW-Authenticate` header,
 * say) that becomes the response.
 */
export interface Authenticator {
  authenticate(request: Request): Promise<Principal>;
}

/**
 * An authentication or authorization handler's own refusal (the official
 * `HTTPException`): answered with its status, headers and message, as the
 * official server does.
 */
export class AuthFailure extends BatonError {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(status === 403 ? ErrorCode.forbidden : status === 404 ? ErrorCode.notFound : ErrorCode.unauthorized, message);
    this.name = "AuthFailure";
    this.status = status;
    this.headers = headers;
  }
}
