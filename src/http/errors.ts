/** HTTP statuses for domain errors: decided here and nowhere else. */
import { randomUUID } from "node:crypto";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ZodError } from "zod";
import { AuthFailure } from "../core/authorizer.ts";
import { BatonError, coerceError, type ErrorCode } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";

const STATUS: Record<ErrorCode, ContentfulStatusCode> = {
  not_found: 404,
  unauthorized: 401,
  forbidden: 403,
  conflict: 409,
  thread_busy: 409,
  invalid_input: 422,
  unsupported_field: 422,
  lease_lost: 409,
  unavailable: 503,
  too_many_requests: 429,
  upstream_unavailable: 503,
  bad_gateway: 502,
  internal: 500,
};

export function zodMessage(error: ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "body"}: ${issue.message}`)
    .join("; ");
}

export function errorResponse(c: Context, thrown: unknown, logger: Logger): Response {
  if (thrown instanceof BatonError && thrown.code === "internal") return internalError(c, thrown, logger);
  if (thrown instanceof AuthFailure) {
    // The project's handler chose the answer: its status, headers (WWW-Authenticate) and message.
    for (const [name, value] of Object.entries(thrown.headers)) c.header(name, value);
    return c.json({ detail: thrown.message }, thrown.status as ContentfulStatusCode);
  }
  if (thrown instanceof BatonError) {
    if (thrown.retryAfterSeconds !== undefined) c.header("Retry-After", String(thrown.retryAfterSeconds));
    return c.json({ detail: thrown.message }, STATUS[thrown.code]);
  }
  if (thrown instanceof ZodError) return c.json({ detail: `Invalid request: ${zodMessage(thrown)}` }, 422);
  if (thrown instanceof HTTPException) {
    if (thrown.status >= 500) return internalError(c, thrown, logger);
    return c.json({ detail: thrown.message || "Request failed." }, thrown.status);
  }
  return internalError(c, thrown, logger);
}

/**
 * A 500 says only that it happened and a reference to find it in the log:
 * the error's own message may be a database driver's (SQL, table names,
 * connection details), which is for the operator, not for the client.
 */
function internalError(c: Context, thrown: unknown, logger: Logger): Response {
  const error = coerceError(thrown);
  const reference = randomUUID();
  logger.error("http:unhandled", { reference, method: c.req.method, path: c.req.path, error: error.message, stack: error.stack });
  return c.json({ detail: `Internal error (reference ${reference}; the server log has the details under this reference).` }, 500);
}
