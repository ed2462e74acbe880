/**
 * Cross-origin requests, as `http.cors` configures them (every origin when it
 * is absent, like the official server). It runs before everything else, so
 * the project's own routes get the same headers as the API, and errors too.
 *
 * Chromium's Private Network Access: a public page (LangGraph Studio's hosted
 * UI) calling a server on localhost or a private address first sends a
 * preflight with `Access-Control-Request-Private-Network: true`; an allowed
 * origin gets `Access-Control-Allow-Private-Network: true` back.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { CorsOptions } from "./project-options.ts";

/** What a preflight allows when `allow_methods` is not set (the dev server's list). */
const DEFAULT_METHODS = "GET,HEAD,PUT,POST,DELETE,PATCH,QUERY";

export function cors(options: CorsOptions): MiddlewareHandler {
  const anyOrigin = options.allowOrigins.includes("*");
  const listed = new Set(options.allowOrigins);
  const expose = options.exposeHeaders.join(",");
  const reflectMethods = options.allowMethods === undefined ? false : options.allowMethods.includes("*");
  const methods = options.allowMethods === undefined ? DEFAULT_METHODS : options.allowMethods.join(",");
  const reflectHeaders = options.allowHeaders === undefined || options.allowHeaders.includes("*");
  const headers = options.allowHeaders?.join(",") ?? "";
  // Credentials are refused by browsers with `*`: name the origin then.
  const star = anyOrigin && !options.allowCredentials;

  /** The Access-Control-Allow-Origin value for this request's origin, if allowed. */
  const allowedOrigin = (origin: string | undefined): string | undefined => {
    if (star) return "*";
    if (origin === undefined) return undefined;
    if (anyOrigin || listed.has(origin) || options.allowOriginRegex?.test(origin)) return origin;
    return undefined;
  };

  const preflight = (c: Context, origin: string | undefined): Response => {
    const answer = new Headers();
    const allowed = allowedOrigin(origin);
    if (!star) answer.append("Vary", "Origin");
    if (allowed !== undefined) {
      answer.set("Access-Control-Allow-Origin", allowed);
      if (options.allowCredentials) answer.set("Access-Control-Allow-Credentials", "true");
      answer.set("Access-Control-Allow-Methods", reflectMethods ? (c.req.header("Access-Control-Request-Method") ?? methods) : methods);
      const requested = c.req.header("Access-Control-Request-Headers");
      const allowHeaders = reflectHeaders ? requested : headers;
      if (allowHeaders) answer.set("Access-Control-Allow-Headers", allowHeaders);
      if (reflectHeaders) answer.append("Vary", "Access-Control-Request-Headers");
      if (options.maxAgeSeconds !== undefined) answer.set("Access-Control-Max-Age", String(options.maxAgeSeconds));
      if (c.req.header("Access-Control-Request-Private-Network") === "true") answer.set("Access-Control-Allow-Private-Network", "true");
    }
    return new Response(null, { status: 204, headers: answer });
  };

  return async (c, next) => {
    const origin = c.req.header("Origin");
    if (c.req.method === "OPTIONS" && c.req.header("Access-Control-Request-Method") !== undefined) return preflight(c, origin);
    await next();
    const allowed = allowedOrigin(origin);
    const add: [string, string][] = [];
    if (!star) add.push(["Vary", "Origin"]);
    if (allowed !== undefined) {
      add.push(["Access-Control-Allow-Origin", allowed]);
      if (options.allowCredentials) add.push(["Access-Control-Allow-Credentials", "true"]);
      if (expose) add.push(["Access-Control-Expose-Headers", expose]);
    }
    addHeaders(c, add);
  };
}

/** Sets headers on the response (Vary is added to); one with immutable headers (a fetched one) is copied first. */
function addHeaders(c: Context, entries: [string, string][]): void {
  const apply = (set: (name: string, value: string, append: boolean) => void) => {
    for (const [name, value] of entries) set(name, value, name === "Vary");
  };
  try {
    apply((name, value, append) => (append ? c.res.headers.append(name, value) : c.res.headers.set(name, value)));
  } catch {
    apply((name, value, append) => c.header(name, value, { append }));
  }
}
