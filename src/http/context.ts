/**
 * The request's identity and what travels with it, built once per request
 * (before any route) and kept on the Hono context as `c.var.ctx`; routes
 * pass it to the core services, which hand it to the Authorizer.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Authenticator } from "../core/authorizer.ts";
import type { RequestContext } from "../core/context.ts";
import { configurableHeaders } from "./configurable-headers.ts";
import type { HeaderRule } from "./project-options.ts";

/** The Hono environment of routes that read the request context. */
export interface BatonEnv {
  Variables: { ctx: RequestContext };
}

const optional = (value: string | undefined) => (value === undefined || value === "" ? undefined : value);

/**
 * Builds the request context; `headers` follows `http.configurable_headers`;
 * `user` is the value of the `userHeader` header (option userHeader), when set.
 */
export function requestContext(rule: HeaderRule, userHeader?: string): MiddlewareHandler<BatonEnv> {
  return async (c, next) => {
    c.set("ctx", {
      user: userHeader === undefined ? undefined : optional(c.req.header(userHeader)?.trim()),
      // Anonymous until the authentication middleware (when configured) names the caller.
      principal: null,
      headers: configurableHeaders(c.req.raw.headers, rule),
      traceparent: optional(c.req.header("traceparent")),
      idempotencyKey: optional(c.req.header("idempotency-key")),
    });
    await next();
  };
}

/** The context the middleware built for this request. */
export function ctxOf(c: Context<BatonEnv>): RequestContext {
  const ctx = c.get("ctx");
  // Only a route mounted without createApp could miss it: a wiring mistake.
  if (ctx === undefined) throw new Error("No request context: the route is mounted without the requestContext middleware (src/http/app.ts).");
  return ctx;
}

/**
 * Runs the project's authenticator on every request but the health and
 * info routes (`/ok`, `/ready`, `/info`, `/metrics`) and the generative UI bundles (`GET
 * /ui/...`), which the official server leaves open too, and puts the caller
 * in the request context. A refusal becomes the response (src/http/errors.ts).
 */
export function authentication(authenticator: Authenticator, mountPrefix: string): MiddlewareHandler<BatonEnv> {
  return async (c, next) => {
    const full = c.req.path;
    const path = mountPrefix !== "" && full.startsWith(mountPrefix) ? full.slice(mountPrefix.length) || "/" : full;
    const open = path === "/ok" || full === "/ok" || path === "/ready" || full === "/ready" || full === "/metrics" || path === "/metrics" || path === "/info" || (c.req.method === "GET" && path.startsWith("/ui/"));
    if (!open) c.set("ctx", { ...ctxOf(c), principal: await authenticator.authenticate(c.req.raw) });
    await next();
  };
}
