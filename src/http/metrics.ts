/**
 * HTTP request metrics and the `/metrics` route (docs/metrics.md). This
 * module knows Hono, not prom-client: it hands each answered request to a
 * recorder the composition root passes in.
 *
 * A request is labelled with its route template (`/threads/:thread_id/runs`),
 * never its path, so ids never become labels and the series stay bounded by
 * the routes the app defines.
 */
import type { Context, Handler, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";

/** Records one answered request: method, route template, status, seconds to the response's headers. */
export type RequestRecorder = (method: string, route: string, status: number, seconds: number) => void;

/** The label of a request no route matched (a 404, or a method the path does not take). */
export const UNMATCHED_ROUTE = "(unmatched)";

/** A route Hono matched that is middleware (`use`), not an endpoint. */
const isMiddleware = (route: { method: string; path: string }) => route.method === "ALL" && route.path.endsWith("*");

/**
 * The template of the route that answered: the endpoint that responded, or
 * when middleware answered first (a refused Host, a failed authentication)
 * the endpoint the request was for; `UNMATCHED_ROUTE` when there is none.
 */
export function routeTemplate(c: Context): string {
  const routes = matchedRoutes(c);
  const responder = routes[c.req.routeIndex];
  if (responder !== undefined && !isMiddleware(responder)) return responder.path;
  for (let i = routes.length - 1; i >= 0; i--) if (!isMiddleware(routes[i]!)) return routes[i]!.path;
  return UNMATCHED_ROUTE;
}

/** Times every request the app answers (registered first, so it wraps all the rest). */
export function requestMetrics(record: RequestRecorder): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    try {
      await next();
    } finally {
      record(c.req.method, routeTemplate(c), c.res.status, (performance.now() - started) / 1000);
    }
  };
}

/** `GET /metrics`: the Prometheus text format. */
export function metricsHandler(scrape: () => Promise<{ contentType: string; body: string }>): Handler {
  return async (c) => {
    const { contentType, body } = await scrape();
    return c.body(body, 200, { "Content-Type": contentType });
  };
}
