/** HTTP statuses for domain errors: decided here and nowhere else. */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ZodError } from "zod";
import { BatonError, coerceError, type ErrorCode } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";

const STATUS: Record<ErrorCode, ContentfulStatusCode> = {
  not_found: 404,
  conflict: 409,
  thread_busy: 409,
  invalid_input: 422,
  unsupported_field: 422,
  lease_lost: 409,
  unavailable: 503,
  too_many_requests: 429,
  internal: 500,
};

export function zodMessage(error: ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "body"}: ${issue.message}`)
    .join("; ");
}

export function errorResponse(c: Context, thrown: unknown, logger: Logger): Response {
  if (thrown instanceof BatonError) {
    if (thrown.retryAfterSeconds !== undefined) c.header("Retry-After", String(thrown.retryAfterSeconds));
    return c.json({ detail: thrown.message }, STATUS[thrown.code]);
  }
  if (thrown instanceof ZodError) return c.json({ detail: `Invalid request: ${zodMessage(thrown)}` }, 422);
  if (thrown instanceof HTTPException) {
    return c.json({ detail: thrown.message || "Request failed." }, thrown.status);
  }
  const error = coerceError(thrown);
  logger.error("http:unhandled", { method: c.req.method, path: c.req.path, error: error.message, stack: error.stack });
  return c.json({ detail: `Internal error: ${error.message}` }, 500);
}
