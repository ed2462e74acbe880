import { Hono } from "hono";
import { langsmithTracing } from "../../config.ts";
import type { HttpDeps } from "../deps.ts";

/**
 * The version of the LangGraph.js that runs the graphs: the project's own
 * copy when it has one (the package resolution hook shares it with Baton),
 * else Baton's. Read once; "unknown" if the package cannot say.
 */
let langgraphVersion: Promise<string> | undefined;
const readLanggraphVersion = () =>
  (langgraphVersion ??= import("@langchain/langgraph/package.json", { with: { type: "json" } }).then(
    (pkg: { default?: { version?: unknown } }) => (typeof pkg.default?.version === "string" ? pkg.default.version : "unknown"),
    () => "unknown",
  ));

export function metaRoutes(deps: HttpDeps): Hono {
  const app = new Hono();
  app.get("/ok", (c) => c.json({ ok: true }));
  // Every field the spec's ServerInfo lists, and the dev server's own (`langgraph_js_version`, `context`).
  // Baton runs LangGraph.js: `langgraph_py_version` (required by the spec) carries that same LangGraph
  // release, for clients that read it to learn which LangGraph serves them (docs/compatibility.md).
  app.get("/info", async (c) => {
    const langgraph = await readLanggraphVersion();
    return c.json({
      version: deps.options.version,
      langgraph_js_version: langgraph,
      langgraph_py_version: langgraph,
      context: "js",
      // What Baton serves: assistants and crons yes; LangSmith when the environment has LangChain
      // trace the runs; tracing replicas are not wired by Baton.
      flags: { assistants: true, crons: true, langsmith: langsmithTracing(), langsmith_tracing_replicas: false },
      host: { kind: "baton", project_id: null, revision_id: null, tenant_id: null },
      metadata: { server: "baton" },
    });
  });
  return app;
}
