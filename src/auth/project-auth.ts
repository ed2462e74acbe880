/**
 * A project's `Auth` object (`auth.path` in langgraph.json, an instance of
 * `Auth` from `@langchain/langgraph-sdk/auth`) as Baton's Authenticator and
 * Authorizer, behaving as the official server does with it:
 *
 * - `authenticate(request)` answers the caller: a string (its identity) or
 *   an object with `identity` (and `permissions`, `display_name`,
 *   `is_authenticated`, any fields of its own);
 * - `on.<resource>.<action>` handlers are looked up from the most specific
 *   (`threads:create`, then `threads`, then `*:create`, then `*`) and called
 *   with `{event, resource, action, value, user, permissions}`; they may
 *   change `value` in place (`value.metadata.owner = user.identity`), and
 *   answer nothing or `true` (allowed), `false` (403), or a filter object;
 * - an `HTTPException` (anything with a numeric `status`) thrown by either
 *   becomes the response, with its status, headers and message. Anything
 *   else thrown is a refusal: 401 from `authenticate`, 403 from a handler
 *   (logged with the handler's error, which the client does not see).
 */
import { AccessDenied, AuthFailure, type Authenticator, type Authorization, type Authorizer, type Resource, type ResourceActions } from "../core/authorizer.ts";
import type { Principal, RequestContext } from "../core/context.ts";
import { BatonError, ErrorCode } from "../core/errors.ts";
import type { Filter } from "../core/filter.ts";
import type { Logger } from "../core/logger.ts";

type Handler = (request: {
  event: string;
  resource: string;
  action: string;
  value: unknown;
  user: Principal;
  permissions: string[];
}) => unknown;

/** What an `Auth` instance keeps (its `~handlerCache`): the one shape both the SDK and the official server rely on. */
interface HandlerCache {
  authenticate?: (request: Request) => unknown;
  callbacks?: Record<string, Handler>;
}

/** The handlers of an `Auth` instance; a clear start-up error for anything else. */
export function handlersOf(exported: unknown, where: string): HandlerCache {
  if (typeof exported !== "object" || exported === null || !("~handlerCache" in exported)) {
    throw new Error(`auth.path '${where}' must export an instance of Auth from @langchain/langgraph-sdk/auth (new Auth().authenticate(...).on(...)); it exports ${describe(exported)}.`);
  }
  const cache = exported["~handlerCache"];
  if (typeof cache !== "object" || cache === null) throw new Error(`auth.path '${where}': the Auth instance has no handlers.`);
  const handlers = cache as HandlerCache;
  if (typeof handlers.authenticate !== "function") {
    throw new Error(
      `auth.path '${where}': the Auth instance has no authenticate handler, so no request would have a user and no on(...) handler would ever run. Add .authenticate(async (request) => ...).`,
    );
  }
  return handlers;
}

const describe = (value: unknown) => (value === undefined ? "nothing (check the export name after ':')" : value === null ? "null" : `a ${typeof value}`);

export class ProjectAuth implements Authenticator, Authorizer {
  readonly #handlers: HandlerCache;
  readonly #logger: Logger;

  constructor(handlers: HandlerCache, logger: Logger) {
    this.#handlers = handlers;
    this.#logger = logger;
  }

  async authenticate(request: Request): Promise<Principal> {
    let answer: unknown;
    try {
      answer = await this.#handlers.authenticate!(request);
    } catch (thrown) {
      throw this.#refusal(thrown, 401, "Authentication failed.", "auth:authenticate_failed");
    }
    return principalOf(answer);
  }

  async authorize<R extends Resource, V extends object>(ctx: RequestContext, resource: R, action: ResourceActions[R], value: V): Promise<Authorization<V>> {
    const handler = this.#handlerFor(resource, action);
    // No handler, or no caller (a route authentication skips): allowed, as on the official server.
    if (handler === undefined || ctx.principal === null) return { value };
    let answer: unknown;
    try {
      answer = await handler({ event: `${resource}:${action}`, resource, action, value, user: ctx.principal, permissions: ctx.principal.permissions });
    } catch (thrown) {
      throw this.#refusal(thrown, 403, `Not authorized to ${action} ${resource}.`, "auth:handler_failed");
    }
    checkRewrite(value, resource, action);
    if (answer === undefined || answer === null || answer === true) return { value };
    if (answer === false) throw new AccessDenied(resource, action);
    if (typeof answer !== "object" || Array.isArray(answer)) {
      throw new BatonError(ErrorCode.internal, `The auth handler for ${resource}:${action} returned ${typeof answer}; it must return a filter object, true, false, null or nothing.`);
    }
    return { value, filter: answer as Filter };
  }

  #handlerFor(resource: string, action: string): Handler | undefined {
    const callbacks = this.#handlers.callbacks ?? {};
    for (const key of [`${resource}:${action}`, resource, `*:${action}`, "*"]) {
      if (Object.hasOwn(callbacks, key) && typeof callbacks[key] === "function") return callbacks[key];
    }
    return undefined;
  }

  /** A handler's HTTPException as its own answer; anything else as `status`, logged for the operator. */
  #refusal(thrown: unknown, status: number, message: string, event: string): BatonError {
    const own = httpException(thrown);
    if (own !== undefined) return own;
    if (thrown instanceof BatonError) return thrown;
    this.#logger.warn(event, { status, error: thrown instanceof Error ? thrown.message : String(thrown) });
    return new AuthFailure(status, message);
  }
}

/**
 * Whether the error is an `HTTPException`: the SDK's (the project may have
 * its own copy, so by class name, not identity) or Hono's, or a subclass.
 * Other errors with a `status` (an HTTP client's, from an identity
 * provider call) are not the handler's answer and are not shown.
 */
function isHttpException(thrown: object): boolean {
  for (let proto: unknown = Object.getPrototypeOf(thrown); proto !== null && proto !== Error.prototype && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    if ((proto as { constructor?: { name?: unknown } }).constructor?.name === "HTTPException") return true;
  }
  return false;
}

/** An `HTTPException` with a status from 400 to 599, as an AuthFailure. */
function httpException(thrown: unknown): AuthFailure | undefined {
  if (typeof thrown !== "object" || thrown === null || !("status" in thrown) || !isHttpException(thrown)) return undefined;
  const { status, message, headers } = thrown as { status: unknown; message?: unknown; headers?: unknown };
  if (typeof status !== "number" || !Number.isInteger(status) || status < 400 || status > 599) return undefined;
  const text = typeof message === "string" && message !== "" ? message : status === 401 ? "Unauthorized" : status === 403 ? "Forbidden" : "Request refused.";
  return new AuthFailure(status, text, headerRecord(headers));
}

function headerRecord(headers: unknown): Record<string, string> {
  if (headers === undefined || headers === null) return {};
  if (headers instanceof Headers) {
    const record: Record<string, string> = {};
    headers.forEach((value, name) => (record[name] = value));
    return record;
  }
  if (typeof headers !== "object") return {};
  const record: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (typeof value === "string") record[name] = value;
  return record;
}

/**
 * The caller `authenticate` answered, normalised as the official server
 * does: a string is an authenticated identity; an object needs a string
 * `identity`, and gets `permissions` ([]), `display_name` (the identity)
 * and `is_authenticated` (true) when it has none. It must be plain JSON: it
 * travels with the runs it creates (`config.configurable.langgraph_auth_user`).
 */
export function principalOf(answer: unknown): Principal {
  if (typeof answer === "string" && answer !== "") {
    return { identity: answer, display_name: answer, is_authenticated: true, permissions: [] };
  }
  if (typeof answer === "object" && answer !== null && typeof (answer as { identity?: unknown }).identity === "string") {
    const user = JSON.parse(JSON.stringify(answer)) as Record<string, unknown>;
    const identity = user.identity as string;
    const permissions = Array.isArray(user.permissions) ? user.permissions.filter((p): p is string => typeof p === "string") : [];
    return {
      ...user,
      identity,
      permissions,
      display_name: typeof user.display_name === "string" ? user.display_name : identity,
      is_authenticated: typeof user.is_authenticated === "boolean" ? user.is_authenticated : true,
    };
  }
  throw new BatonError(ErrorCode.internal, "The authenticate handler must return a string (the identity) or an object with a string 'identity'.");
}

/** A handler may rewrite the value in place; `metadata`, where the value has it, must stay a JSON object. */
function checkRewrite(value: object, resource: string, action: string): void {
  if (!("metadata" in value)) return;
  const metadata = (value).metadata;
  if (metadata === undefined || (typeof metadata === "object" && metadata !== null && !Array.isArray(metadata))) return;
  throw new BatonError(ErrorCode.internal, `The auth handler for ${resource}:${action} set value.metadata to ${Array.isArray(metadata) ? "an array" : String(metadata === null ? "null" : typeof metadata)}; it must stay an object.`);
}
