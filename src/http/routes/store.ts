import { Hono } from "hono";
import type { HttpDeps } from "../deps.ts";
import * as s from "../schemas.ts";
import { body, parse } from "../validate.ts";

export function storeRoutes(deps: HttpDeps): Hono {
  const app = new Hono();
  const { items } = deps;

  app.put("/store/items", async (c) => {
    const input = await body(c, s.StorePut);
    await items.put(input.namespace, input.key, input.value);
    return c.body(null, 204);
  });

  app.delete("/store/items", async (c) => {
    const input = await body(c, s.StoreDelete);
    await items.delete(input.namespace, input.key);
    return c.body(null, 204);
  });

  app.get("/store/items", async (c) => {
    const raw = c.req.query("namespace");
    const namespace = raw === undefined || raw === "" ? [] : raw.split(".");
    const { key } = parse(s.StoreDelete, { namespace, key: c.req.query("key") });
    // A missing item is 200 with null, as the official server and SDK have it.
    return c.json(await items.get(namespace, key));
  });

  app.post("/store/items/search", async (c) => {
    const q = await body(c, s.StoreSearch);
    const found = await items.search({
      namespace_prefix: q.namespace_prefix,
      filter: q.filter ?? undefined,
      limit: q.limit,
      offset: q.offset,
      query: q.query ?? undefined,
    });
    return c.json({ items: found });
  });

  app.post("/store/namespaces", async (c) => {
    const q = await body(c, s.StoreNamespaces);
    const namespaces = await items.listNamespaces({
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
