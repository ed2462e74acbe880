import { Hono } from "hono";
import { ctxOf, type BatonEnv } from "../context.ts";
import type { HttpDeps } from "../deps.ts";
import * as s from "../schemas.ts";
import { body, parse } from "../validate.ts";

export function storeRoutes(deps: HttpDeps): Hono<BatonEnv> {
  const app = new Hono<BatonEnv>();
  const { storeService: store } = deps;

  app.put("/store/items", async (c) => {
    const input = await body(c, s.StorePut);
    await store.put(ctxOf(c), { namespace: input.namespace, key: input.key, value: input.value, index: input.index, ttl: input.ttl });
    return c.body(null, 204);
  });

  app.delete("/store/items", async (c) => {
    const input = await body(c, s.StoreDelete);
    await store.delete(ctxOf(c), { namespace: input.namespace, key: input.key });
    return c.body(null, 204);
  });

  app.get("/store/items", async (c) => {
    const raw = c.req.query("namespace");
    const namespace = raw === undefined || raw === "" ? [] : raw.split(".");
    const { key } = parse(s.StoreDelete, { namespace, key: c.req.query("key") });
    const { refresh_ttl: refreshTtl } = parse(s.StoreGetQuery, { refresh_ttl: c.req.query("refresh_ttl") });
    // A missing item is 200 with null, as the official server and SDK have it.
    return c.json(await store.get(ctxOf(c), { namespace, key, refreshTtl }));
  });

  app.post("/store/items/search", async (c) => {
    const q = await body(c, s.StoreSearch);
    const found = await store.search(ctxOf(c), {
      namespace_prefix: q.namespace_prefix,
      filter: q.filter ?? undefined,
      limit: q.limit,
      offset: q.offset,
      query: q.query ?? undefined,
      refreshTtl: q.refresh_ttl,
    });
    return c.json({ items: found });
  });

  app.post("/store/namespaces", async (c) => {
    const q = await body(c, s.StoreNamespaces);
    const namespaces = await store.listNamespaces(ctxOf(c), {
      prefix: q.prefix ?? undefined,
      suffix: q.suffix ?? undefined,
      max_depth: q.max_depth ?? undefined,
      limit: q.limit,
      offset: q.offset,
    });
    return c.json({ namespaces });
  });
  return app;
}
