import { randomUUID } from "node:crypto";
import { Hono, type Context } from "hono";
import { ctxOf, type BatonEnv } from "../context.ts";
import type { HttpDeps } from "../deps.ts";
import { select } from "../records.ts";
import * as s from "../schemas.ts";
import { body, flag, parse } from "../validate.ts";

export function assistantRoutes(deps: HttpDeps): Hono<BatonEnv> {
  const app = new Hono<BatonEnv>();
  const { assistantService: assistants, registry, schemas } = deps;

  app.post("/assistants", async (c) => {
    const input = await body(c, s.AssistantCreate);
    const created = await assistants.create(ctxOf(c), {
      assistant_id: input.assistant_id ?? randomUUID(),
      graph_id: input.graph_id,
      config: input.config,
      context: input.context,
      metadata: input.metadata,
      name: input.name ?? "Untitled",
      description: input.description ?? null,
      if_exists: input.if_exists,
    });
    return c.json(created);
  });

  app.post("/assistants/search", async (c) => {
    const q = await body(c, s.AssistantSearch);
    const found = await assistants.search(ctxOf(c), q);
    return c.json(found.map((a) => select(a as unknown as Record<string, unknown>, q.select)));
  });

  app.post("/assistants/count", async (c) => c.json(await assistants.count(ctxOf(c), await body(c, s.AssistantCount))));

  app.get("/assistants/:assistant_id", async (c) => c.json(await assistants.get(ctxOf(c), c.req.param("assistant_id"))));

  app.patch("/assistants/:assistant_id", async (c) => {
    const patch = await body(c, s.AssistantPatch);
    return c.json(await assistants.patch(ctxOf(c), c.req.param("assistant_id"), patch));
  });

  app.delete("/assistants/:assistant_id", async (c) => {
    await assistants.delete(ctxOf(c), c.req.param("assistant_id"), { deleteThreads: flag(c.req.query("delete_threads")) });
    return c.json({});
  });

  app.post("/assistants/:assistant_id/versions", async (c) => {
    const q = await body(c, s.AssistantVersions);
    return c.json(await assistants.versions(ctxOf(c), c.req.param("assistant_id"), q));
  });

  app.post("/assistants/:assistant_id/latest", async (c) => {
    const raw = await body(c, s.SetLatest.partial());
    const { version } = parse(s.SetLatest, { version: raw.version ?? c.req.query("version") });
    return c.json(await assistants.setLatest(ctxOf(c), c.req.param("assistant_id"), version));
  });

  /** The assistant and its graph, built with the assistant's config when the graph is a factory. */
  const graphOf = async (c: Context<BatonEnv>, assistantId: string) => {
    const assistant = await assistants.get(ctxOf(c), assistantId);
    return { assistant, graph: await registry.describe(assistant.graph_id, { configurable: assistant.config.configurable ?? {} }) };
  };

  app.get("/assistants/:assistant_id/graph", async (c) => {
    const xrayRaw = c.req.query("xray");
    const xray = xrayRaw === undefined ? false : /^\d+$/.test(xrayRaw) ? Number(xrayRaw) : flag(xrayRaw);
    const { graph } = await graphOf(c, c.req.param("assistant_id"));
    const drawable = await graph.getGraphAsync({ xray });
    return c.json(drawable.toJSON());
  });

  app.get("/assistants/:assistant_id/schemas", async (c) => {
    const { assistant, graph } = await graphOf(c, c.req.param("assistant_id"));
    const schema = await schemas.root(assistant.graph_id, graph);
    // As on the dev server, the context schema is the config schema (in JS they cannot be told apart).
    return c.json({
      graph_id: assistant.graph_id,
      input_schema: schema.input,
      output_schema: schema.output,
      state_schema: schema.state,
      config_schema: schema.config,
      context_schema: schema.config,
    });
  });

  // Each subgraph's schemas as the extractor gives them ({state, input, output, config}), as on the dev server.
  const subgraphs = async (c: Context<BatonEnv>, assistantId: string, namespace: string | undefined, recurse: boolean) => {
    const { assistant, graph } = await graphOf(c, assistantId);
    return schemas.subgraphs(assistant.graph_id, graph, namespace, recurse);
  };
  app.get("/assistants/:assistant_id/subgraphs", async (c) =>
    c.json(await subgraphs(c, c.req.param("assistant_id"), undefined, flag(c.req.query("recurse")))),
  );
  app.get("/assistants/:assistant_id/subgraphs/:namespace", async (c) =>
    c.json(await subgraphs(c, c.req.param("assistant_id"), c.req.param("namespace"), flag(c.req.query("recurse")))),
  );
  return app;
}
