/**
 * The HTTP API: a Hono app built from the services it is given and the
 * project's `http` options.
 *
 * A project's own Hono app (`http.app`) is mounted the way the official
 * server mounts it: its routes and middleware are added ahead of the API's,
 * so its routes win where they match, its middleware wraps the API routes
 * too, and a request it does not route reaches the API (its own not-found
 * handler is not used, as there). CORS runs before all of it, and the
 * Host check before CORS.
 */
import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ConfigError } from "../config.ts";
import type { Authenticator } from "../core/authorizer.ts";
import { authentication, requestContext } from "./context.ts";
import { cors } from "./cors.ts";
import type { HttpDeps } from "./deps.ts";
import { errorResponse } from "./errors.ts";
import { requestMetrics } from "./metrics.ts";
import { requestSpans } from "../tracing/http.ts";
import { httpOptions, type HttpOptions } from "./project-options.ts";
import { assistantRoutes } from "./routes/assistants.ts";
import { cronRoutes } from "./routes/crons.ts";
import { a2aRoutes } from "./routes/a2a.ts";
import { healthRoutes } from "./routes/health.ts";
import { mcpRoutes } from "./routes/mcp.ts";
import { metaRoutes } from "./routes/meta.ts";
import { runRoutes } from "./routes/runs.ts";
import { storeRoutes } from "./routes/store.ts";
import { protocolRoutes } from "./routes/protocol.ts";
import { threadStreamRoutes } from "./routes/thread-stream.ts";
import { threadRoutes } from "./routes/threads.ts";
import { uiRoutes } from "./routes/ui.ts";
import { followBodyChanges, requestLimits } from "./validate.ts";

export type { HttpDeps } from "./deps.ts";
export { httpOptions, type HttpOptions } from "./project-options.ts";

/** The project's app must be a Hono app: its routes are what gets mounted. */
function asHono(userApp: unknown, spec: string | undefined): Hono {
  const candidate = userApp as { routes?: unknown; fetch?: unknown } | null | undefined;
  if (typeof candidate?.fetch !== "function" || !Array.isArray(candidate.routes)) {
    throw new ConfigError(`langgraph.json http.app (${spec ?? "?"}) must export a Hono app (new Hono() from "hono"), as the official server requires; got ${candidate === null ? "null" : typeof candidate}.`);
  }
  return candidate as unknown as Hono;
}

/** The Host header's name: lower case, without port or trailing dot; "[::1]" keeps its brackets. */
export function hostName(host: string): string {
  const value = host.trim().toLowerCase();
  const name = value.startsWith("[") ? value.slice(0, value.indexOf("]") + 1 || undefined) : value.replace(/:\d*$/, "");
  return name.endsWith(".") ? name.slice(0, -1) : name;
}

/**
 * Whether a Host name is answered. Addresses (`127.0.0.1`, `[::1]`, the
 * server's own) and `localhost` names always are: DNS rebinding needs a DNS
 * name the attacker controls, and browsers resolve `*.localhost` themselves.
 * So a graph's `new Client()` in an execution thread, which calls the
 * server at its address, keeps working whatever the list says.
 */
export function hostAllowed(name: string, allowed: readonly string[]): boolean {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name) || name.startsWith("[") || name === "localhost" || name.endsWith(".localhost")) return true;
  return allowed.some((entry) => (entry.startsWith(".") ? name === entry.slice(1) || name.endsWith(entry) : name === entry));
}

/**
 * DNS rebinding defence: a page on evil.example whose name is made to point
 * at 127.0.0.1 reaches a local Baton as same-origin, with Host: evil.example.
 * Requests naming a host that is not allowed are refused with 403 (as Vite's
 * dev server does), before CORS, so a preflight is refused too. /ok, /ready and /metrics answer
 * any host (health probes use addresses), and so do requests made inside
 * the process (a graph's `new Client()` without apiUrl), which no page can
 * send.
 */
function hostCheck(allowed: readonly string[] | null, prefix: string): MiddlewareHandler {
  return async (c, next) => {
    const env = c.env as { incoming?: unknown } | undefined;
    if (allowed === null || env?.incoming === undefined || c.req.path === "/ok" || c.req.path === `${prefix}/ok` || c.req.path === "/ready" || c.req.path === `${prefix}/ready`) return next();
    if (c.req.path === "/metrics" || c.req.path === `${prefix}/metrics`) return next();
    const header = c.req.header("host") ?? new URL(c.req.url).host;
    const name = hostName(header);
    if (hostAllowed(name, allowed)) return next();
    return c.json(
      {
        detail: `Blocked request: host '${name.slice(0, 100)}' is not allowed. Baton answers the host names in BATON_ALLOWED_HOSTS (allowedHosts; now ${allowed.join(", ") || "none"}); add this name there if clients reach Baton through it.`,
      },
      403,
    );
  };
}

/**
 * A NUL character (%00) in the path or query cannot name anything Baton
 * stores (Postgres cannot hold it in text): refused on every backend alike,
 * as in a JSON body, instead of failing in the database.
 */
const refuseNulInUrl: MiddlewareHandler = async (c, next) => {
  if (!/%00/i.test(c.req.url)) return next();
  return c.json({ detail: "The URL contains the NUL character (%00), which Baton does not store (Postgres cannot); remove it from the path or query." }, 422);
};

/**
 * `authenticator`: who the caller is, asked before every route but `/ok`,
 * `/info` and the UI bundles; the project's own routes too unless
 * `http.enable_custom_route_auth` is false.
 */
export function createApp(deps: HttpDeps, http: HttpOptions = httpOptions(undefined), userApp?: unknown, authenticator?: Authenticator): Hono {
  const app = new Hono();
  app.onError((error, c) => errorResponse(c, error, deps.logger));
  app.notFound((c) => c.json({ detail: `No route for ${c.req.method} ${c.req.path}.` }, 404));
  // First, so it times every request, including those refused below (docs/metrics.md).
  if (deps.options.recordRequest !== undefined) app.use("*", requestMetrics(deps.options.recordRequest));
  // A span per request when tracing is on (docs/tracing.md); the routes below run inside it.
  app.use("*", requestSpans());
  app.use("*", hostCheck(deps.options.allowedHosts, http.mountPrefix));
  app.use("*", requestLimits(deps.options.limits));
  app.use("*", refuseNulInUrl);
  app.use("*", cors(http.cors));
  app.use(
    "*",
    bodyLimit({
      maxSize: deps.options.maxBodyBytes,
      onError: (c) => c.json({ detail: `Request body is larger than the limit of ${deps.options.maxBodyBytes} bytes.` }, 413),
    }),
  );
  // Who is asking, once per request, for every route below (and the project's own app).
  app.use("*", requestContext(http.configurableHeaders, deps.options.userHeader));
  const ok = () => new Response(JSON.stringify({ ok: true }), { headers: { "Content-Type": "application/json" } });
  // Health probes need not know the prefix.
  if (http.mountPrefix !== "") app.get("/ok", ok);
  if (http.mountPrefix !== "") app.route("/", healthRoutes(deps.readiness));
  const api = http.mountPrefix === "" ? app : app.basePath(http.mountPrefix);
  const authenticate = authenticator === undefined ? undefined : authentication(authenticator, http.mountPrefix);
  // The project's routes are authenticated (as on the published dev server) unless it turns that off.
  if (authenticate !== undefined && http.customRouteAuth) app.use("*", authenticate);
  if (userApp !== undefined) {
    api.use("*", followBodyChanges);
    api.route("/", asHono(userApp, http.app));
  }
  // Mounted after the project's routes, it leaves them open; the API's are always behind it.
  if (authenticate !== undefined && !http.customRouteAuth) app.use("*", authenticate);
  const { disabled } = http;
  // Readiness answers whatever is disabled (src/http/routes/health.ts).
  api.route("/", healthRoutes(deps.readiness));
  // Without meta routes /ok still answers, as on the official server.
  if (disabled.meta) api.get("/ok", ok);
  else api.route("/", metaRoutes(deps));
  if (!disabled.assistants) api.route("/", assistantRoutes(deps));
  if (!disabled.threads) api.route("/", threadRoutes(deps));
  if (!disabled.threads && !disabled.runs) api.route("/", threadStreamRoutes(deps));
  if (!disabled.threads && !disabled.runs) api.route("/", protocolRoutes(deps));
  if (!disabled.runs) api.route("/", runRoutes(deps));
  // Crons create runs: disabling runs disables them too.
  if (!disabled.runs) api.route("/", cronRoutes(deps));
  if (!disabled.store) api.route("/", storeRoutes(deps));
  if (!disabled.ui) api.route("/", uiRoutes(deps.ui));
  if (!disabled.mcp) api.route("/", mcpRoutes(deps));
  if (!disabled.a2a) api.route("/", a2aRoutes(deps));
  return app;
}
