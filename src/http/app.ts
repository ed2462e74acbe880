/**
 * The HTTP API: a Hono app built from the services it is given. A project's
 * own Hono app (`http.app` in langgraph.json) is mounted in front of it.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { HttpDeps } from "./deps.ts";
import { errorResponse } from "./errors.ts";
import { assistantRoutes } from "./routes/assistants.ts";
import { metaRoutes } from "./routes/meta.ts";
import { runRoutes } from "./routes/runs.ts";
import { storeRoutes } from "./routes/store.ts";
import { threadRoutes } from "./routes/threads.ts";

export type { HttpDeps } from "./deps.ts";

export function createApp(deps: HttpDeps, userApp?: { fetch: (request: Request, ...rest: any[]) => Response | Promise<Response> }): Hono {
  const app = new Hono();
  app.onError((error, c) => errorResponse(c, error, deps.logger));
  app.notFound((c) => c.json({ detail: `No route for ${c.req.method} ${c.req.path}.` }, 404));
  app.use(
    "*",
    bodyLimit({
      maxSize: deps.options.maxBodyBytes,
      onError: (c) => c.json({ detail: `Request body is larger than the limit of ${deps.options.maxBodyBytes} bytes.` }, 413),
    }),
  );
  if (userApp !== undefined) {
    // The project's routes come first; anything it does not answer (404)
    // falls through to the API.
    app.use("*", async (c, next) => {
      const response = await userApp.fetch(c.req.raw.clone(), c.env);
      if (response.status !== 404) return response;
      await next();
    });
  }
  app.route("/", metaRoutes(deps));
  app.route("/", assistantRoutes(deps));
  app.route("/", threadRoutes(deps));
  app.route("/", runRoutes(deps));
  app.route("/", storeRoutes(deps));
  return app;
}
