/**
 * The HTTP API: a Hono app built from the services it is given and the
 * project's `http` options.
 *
 * A project's own Hono app (`http.app`) is mounted the way the official
 * server mounts it: its routes and middleware are added ahead of the API's,
 * so its routes win where they match, its middleware wraps the API routes
 * too, and a request it does not route reaches the API (its own not-found
 * handler is not used, as there). CORS runs before all of it.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ConfigError } from "../config.ts";
import { cors } from "./cors.ts";
import type { HttpDeps } from "./deps.ts";
import { errorResponse } from "./errors.ts";
import { httpOptions, type HttpOptions } from "./project-options.ts";
import { assistantRoutes } from "./routes/assistants.ts";
import { metaRoutes } from "./routes/meta.ts";
import { runRoutes } from "./routes/runs.ts";
import { storeRoutes } from "./routes/store.ts";
import { threadRoutes } from "./routes/threads.ts";
import { uiRoutes } from "./routes/ui.ts";
import { followBodyChanges } from "./validate.ts";

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

export function createApp(deps: HttpDeps, http: HttpOptions = httpOptions(undefined), userApp?: unknown): Hono {
  const app = new Hono();
  app.onError((error, c) => errorResponse(c, error, deps.logger));
  app.notFound((c) => c.json({ detail: `No route for ${c.req.method} ${c.req.path}.` }, 404));
  app.use("*", cors(http.cors));
  app.use(
    "*",
    bodyLimit({
      maxSize: deps.options.maxBodyBytes,
      onError: (c) => c.json({ detail: `Request body is larger than the limit of ${deps.options.maxBodyBytes} bytes.` }, 413),
    }),
  );
  const ok = () => new Response(JSON.stringify({ ok: true }), { headers: { "Content-Type": "application/json" } });
  // Health probes need not know the prefix.
  if (http.mountPrefix !== "") app.get("/ok", ok);
  const api = http.mountPrefix === "" ? app : app.basePath(http.mountPrefix);
  if (userApp !== undefined) {
    api.use("*", followBodyChanges);
    api.route("/", asHono(userApp, http.app));
  }
  const { disabled } = http;
  // Without meta routes /ok still answers, as on the official server.
  if (disabled.meta) api.get("/ok", ok);
  else api.route("/", metaRoutes(deps));
  if (!disabled.assistants) api.route("/", assistantRoutes(deps));
  if (!disabled.threads) api.route("/", threadRoutes(deps));
  if (!disabled.runs) api.route("/", runRoutes(deps, { configurableHeaders: http.configurableHeaders }));
  if (!disabled.store) api.route("/", storeRoutes(deps));
  if (!disabled.ui) api.route("/", uiRoutes(deps.ui));
  return app;
}
