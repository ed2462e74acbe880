/**
 * A server span per HTTP request (docs/tracing.md), named by method and
 * route template (`POST /threads/:thread_id/runs/wait`), never the path,
 * and a child of the caller's W3C `traceparent` when it sends one. The
 * routes below run inside it, so a run created here carries it through the
 * queue (src/core/tracing.ts).
 *
 * With no SDK registered, the no-op propagator and tracer make this a
 * handful of calls per request that record nothing.
 */
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { MiddlewareHandler } from "hono";
import { TRACER_NAME } from "../core/tracing.ts";
import { routeTemplate } from "../http/metrics.ts";

/** Reads a header from Hono's request for the propagator. */
const getter = {
  keys: (carrier: Headers) => {
    const names: string[] = [];
    carrier.forEach((_value, name) => names.push(name));
    return names;
  },
  get: (carrier: Headers, key: string) => carrier.get(key) ?? undefined,
};

export function requestSpans(): MiddlewareHandler {
  return async (c, next) => {
    const parent = propagation.extract(ROOT_CONTEXT, c.req.raw.headers, getter);
    const span = trace.getTracer(TRACER_NAME).startSpan(c.req.method, { kind: SpanKind.SERVER, attributes: { "http.request.method": c.req.method, "url.path": c.req.path } }, parent);
    if (!span.isRecording()) return next();
    try {
      await context.with(trace.setSpan(parent, span), next);
    } finally {
      const route = routeTemplate(c);
      const status = c.res.status;
      span.updateName(`${c.req.method} ${route}`);
      span.setAttributes({ "http.route": route, "http.response.status_code": status });
      if (status >= 500 || c.error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
  };
}
