import { Hono } from "hono";
import type { RequestContext } from "../../core/context.ts";
import { BatonError, ErrorCode } from "../../core/errors.ts";
import { ctxOf, type BatonEnv } from "../context.ts";
import type { HttpDeps } from "../deps.ts";
import { extractAt, parseExtractPath, select, wireThread } from "../records.ts";
import * as s from "../schemas.ts";
import { body, flag, parse, uuidParam } from "../validate.ts";

export function threadRoutes(deps: HttpDeps): Hono<BatonEnv> {
  const app = new Hono<BatonEnv>();
  const { threadService, threadRecords } = deps;

  app.post("/threads", async (c) => {
    const input = await body(c, s.ThreadCreate);
    if (input.graph_id !== undefined && !deps.registry.ids.includes(input.graph_id)) {
      throw new BatonError(ErrorCode.notFound, `Graph '${input.graph_id}' not found. Known graphs: ${deps.registry.ids.join(", ")}.`);
    }
    const metadata = input.graph_id !== undefined ? { ...input.metadata, graph_id: input.graph_id } : input.metadata;
    // With supersteps, all or nothing: a refused superstep leaves no thread behind.
    const thread = await threadRecords.create(ctxOf(c), { thread_id: input.thread_id, metadata, if_exists: input.if_exists, supersteps: input.supersteps, ttl: input.ttl });
    return c.json(wireThread(thread));
  });

  app.post("/threads/search", async (c) => {
    const q = await body(c, s.ThreadSearch);
    const found = await threadRecords.search(ctxOf(c), q);
    const extract = Object.entries(q.extract ?? {}).map(([alias, path]) => [alias, parseExtractPath(path) as (string | number)[]] as const);
    return c.json(
      found.map((t) => {
        const wire = wireThread(t);
        const picked = select(wire, q.select);
        return extract.length === 0 ? picked : { ...picked, extracted: Object.fromEntries(extract.map(([alias, steps]) => [alias, extractAt(wire, steps)])) };
      }),
    );
  });

  app.post("/threads/prune", async (c) => {
    const input = await body(c, s.ThreadPrune);
    return c.json({ pruned_count: await threadRecords.prune(ctxOf(c), input.thread_ids, input.strategy) });
  });

  app.post("/threads/count", async (c) => c.json(await threadRecords.count(ctxOf(c), await body(c, s.ThreadCount))));

  app.get("/threads/:thread_id", async (c) => {
    const id = uuidParam(c, "thread_id");
    const { include } = parse(s.ThreadGetQuery, { include: c.req.queries("include") });
    return c.json(wireThread(await threadRecords.get(ctxOf(c), id), { ttl: include.includes("ttl") }));
  });

  app.patch("/threads/:thread_id", async (c) => {
    const id = uuidParam(c, "thread_id");
    const { metadata, ttl } = await body(c, s.ThreadPatch);
    return c.json(wireThread(await threadRecords.patch(ctxOf(c), id, metadata, ttl)));
  });

  app.delete("/threads/:thread_id", async (c) => {
    // Its pending runs go with it: their streams are ended, so a client waiting on one is answered at once.
    await threadRecords.delete(ctxOf(c), uuidParam(c, "thread_id"));
    return c.json({});
  });

  app.post("/threads/:thread_id/copy", async (c) => {
    return c.json(wireThread(await threadRecords.copy(ctxOf(c), uuidParam(c, "thread_id"))));
  });

  app.get("/threads/:thread_id/state", async (c) => {
    const id = uuidParam(c, "thread_id");
    return c.json(await threadService.state(ctxOf(c), id, { subgraphs: flag(c.req.query("subgraphs")) }));
  });

  app.get("/threads/:thread_id/state/:checkpoint_id", async (c) => {
    const id = uuidParam(c, "thread_id");
    return c.json(
      await threadService.state(ctxOf(c), id, { subgraphs: flag(c.req.query("subgraphs")), checkpoint: { checkpoint_id: c.req.param("checkpoint_id") } }),
    );
  });

  app.post("/threads/:thread_id/state/checkpoint", async (c) => {
    const id = uuidParam(c, "thread_id");
    const q = await body(c, s.StateAtCheckpoint);
    return c.json(await threadService.state(ctxOf(c), id, { subgraphs: q.subgraphs ?? false, checkpoint: q.checkpoint }));
  });

  app.post("/threads/:thread_id/state", async (c) => {
    const id = uuidParam(c, "thread_id");
    const input = await body(c, s.StateUpdate);
    // Both may be given, as on the official server: the checkpoint's keys over the bare id.
    const checkpoint = input.checkpoint_id || input.checkpoint ? { ...(input.checkpoint_id ? { checkpoint_id: input.checkpoint_id } : {}), ...input.checkpoint } : undefined;
    return c.json(await threadService.update(ctxOf(c), id, { values: input.values, as_node: input.as_node, checkpoint }));
  });

  const history = async (ctx: RequestContext, id: string, raw: unknown) => {
    const q = parse(s.HistoryQuery, raw);
    const before = typeof q.before === "string" ? { checkpoint_id: q.before } : q.before;
    return threadService.history(ctx, id, { limit: q.limit, before, metadata: q.metadata, checkpoint: q.checkpoint });
  };
  app.get("/threads/:thread_id/history", async (c) =>
    c.json(await history(ctxOf(c), uuidParam(c, "thread_id"), { limit: c.req.query("limit"), before: c.req.query("before") })),
  );
  app.post("/threads/:thread_id/history", async (c) => c.json(await history(ctxOf(c), uuidParam(c, "thread_id"), await body(c, s.HistoryQuery.partial()))));

  return app;
}
