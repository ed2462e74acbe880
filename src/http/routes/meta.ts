import { Hono } from "hono";
import type { HttpDeps } from "../deps.ts";

export function metaRoutes(deps: HttpDeps): Hono {
  const app = new Hono();
  app.get("/ok", (c) => c.json({ ok: true }));
  app.get("/info", (c) =>
    c.json({
      version: deps.options.version,
      langgraph_js_version: deps.options.version,
      flags: { assistants: true, crons: false, langsmith: false, langsmith_tracing_replicas: false },
      host: { kind: "baton", project_id: null, revision_id: null, tenant_id: null },
    }),
  );
  return app;
}
