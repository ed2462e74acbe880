/**
 * Who is asking and what came with the request, built once per request at
 * the HTTP edge (src/http/context.ts) and handed to every core service
 * call. Nothing below the edge reads request headers itself.
 */

/**
 * The caller, as the official `Auth.authenticate` handler describes one
 * (`identity`, `permissions`, `display_name`, `is_authenticated`, and any
 * fields of its own). Null until an authenticator exists.
 */
export interface Principal {
  identity: string;
  display_name: string;
  is_authenticated: boolean;
  permissions: string[];
  [field: string]: unknown;
}

export interface RequestContext {
  /** The authenticated caller; null when no authenticator is configured (every request is anonymous). */
  readonly principal: Principal | null;
  /**
   * The request headers a run sees in `config.configurable` (`x-*` but the
   * credential ones, and `user-agent`, or what `http.configurable_headers`
   * says), names lower case.
   */
  readonly headers: Readonly<Record<string, string>>;
  /** The W3C `traceparent` header, when the request carried one. */
  readonly traceparent: string | undefined;
  /** The `Idempotency-Key` header, when the request carried one. */
  readonly idempotencyKey: string | undefined;
  /**
   * The user the `userHeader` request header names (option userHeader,
   * BATON_USER_HEADER), when configured and sent; whose quota a run of an
   * unauthenticated caller counts against (docs/scheduling.md).
   */
  readonly user?: string | undefined;
}

/** The context of work the server does on its own behalf (start-up, system assistants). */
export const SYSTEM_CONTEXT: RequestContext = Object.freeze({ principal: null, headers: Object.freeze({}), traceparent: undefined, idempotencyKey: undefined });
