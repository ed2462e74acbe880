/**
 * What the two JSON-RPC endpoints (`/mcp`, `/a2a/{assistant_id}`) share:
 * error envelopes, the reading of a request body into one JSON-RPC
 * message, and the mapping of Baton's errors to JSON-RPC error codes.
 *
 * A client mistake is answered with a JSON-RPC error object (and a 4xx
 * status when it is about the HTTP request itself), never a 500; an
 * unexpected failure gives a reference to the log, never its message.
 */
import { randomUUID } from "node:crypto";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { AuthFailure } from "../core/authorizer.ts";
import { BatonError, coerceError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import { readJson } from "./validate.ts";

export const RpcCode = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
  /** Implementation-defined server error (-32000): busy, try again; a method not allowed; a request cancelled. */
  serverError: -32000,
} as const;

export type RpcId = string | number | null;

export interface RpcErrorObject {
  code: number;
  message: string;
}

/** A JSON-RPC error thrown by a method: the handler answers it in-band. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    /** The HTTP status to answer with when the error is about the request as a whole. */
    readonly status: ContentfulStatusCode = 200,
  ) {
    super(message);
  }
}

/** A JSON-RPC error response: the error's code and message only (never the HTTP status some errors carry). */
export const rpcErrorBody = (id: RpcId, error: RpcErrorObject) => ({ jsonrpc: "2.0" as const, id, error: { code: error.code, message: error.message } });

/** An HTTP answer carrying a JSON-RPC error (for a message that could not be handled at all). */
export function rpcErrorResponse(c: Context, status: ContentfulStatusCode, code: number, message: string, id: RpcId = null): Response {
  return c.json(rpcErrorBody(id, { code, message }), status);
}

/**
 * The request body as one JSON-RPC message object, read as every Baton
 * body is (strict JSON, UTF-8, the request limits). Batches are refused,
 * as on the official server (and as MCP 2025-06-18 does).
 */
export async function readRpcMessage(c: Context): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await readJson(c);
  } catch (error) {
    if (error instanceof HTTPException && error.status < 500) throw new RpcError(error.status === 400 ? RpcCode.parseError : RpcCode.invalidRequest, error.message, error.status);
    if (error instanceof BatonError && error.code !== "internal") throw new RpcError(RpcCode.invalidRequest, error.message, 422);
    throw error;
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new RpcError(RpcCode.invalidRequest, "Request body must be one JSON-RPC 2.0 message object (batches are not supported).", 400);
  }
  const message = body as Record<string, unknown>;
  if (message.jsonrpc !== "2.0") throw new RpcError(RpcCode.invalidRequest, "Invalid JSON-RPC message: 'jsonrpc' must be \"2.0\".", 400);
  if (message.id !== undefined && message.id !== null && typeof message.id !== "string" && typeof message.id !== "number") {
    throw new RpcError(RpcCode.invalidRequest, "Invalid JSON-RPC message: 'id' must be a string or a number.", 400);
  }
  if (message.method !== undefined && typeof message.method !== "string") {
    throw new RpcError(RpcCode.invalidRequest, "Invalid JSON-RPC message: 'method' must be a string.", 400);
  }
  return message;
}

/** Whether an Accept header admits a media type (`*\/*` and `type/*` included); no header admits anything (RFC 9110, 12.5.1). */
export function accepts(header: string | undefined, mediaType: string): boolean {
  if (header === undefined || header.trim() === "") return true;
  const [type] = mediaType.split("/");
  return header.split(",").some((range) => {
    const value = range.split(";")[0]!.trim().toLowerCase();
    return value === "*/*" || value === mediaType || value === `${type}/*`;
  });
}

/** The HTTP status of an answer to a request that could not be handled at all: the error's own, else 400 (500 for an internal error). */
export const wholeRequestStatus = (answer: RpcErrorObject & { status: ContentfulStatusCode }): ContentfulStatusCode =>
  answer.status !== 200 ? answer.status : answer.code === RpcCode.internalError ? 500 : 400;

/**
 * A thrown error as a JSON-RPC error object: Baton's own errors keep their
 * message (they are written for the client), anything else is logged and
 * answered with a reference only.
 */
export function rpcErrorOf(thrown: unknown, logger: Logger, where: string): RpcErrorObject & { status: ContentfulStatusCode } {
  if (thrown instanceof RpcError) return { code: thrown.code, message: thrown.message, status: thrown.status };
  if (thrown instanceof AuthFailure) return { code: RpcCode.invalidRequest, message: thrown.message, status: 200 };
  if (thrown instanceof BatonError && thrown.code !== "internal") {
    switch (thrown.code) {
      case "too_many_requests":
      case "unavailable":
      case "upstream_unavailable":
      case "thread_busy":
      case "conflict":
      case "lease_lost":
        return { code: RpcCode.serverError, message: thrown.message, status: 200 };
      case "unauthorized":
      case "forbidden":
        return { code: RpcCode.invalidRequest, message: thrown.message, status: 200 };
      case "not_found":
      case "invalid_input":
      case "unsupported_field":
        return { code: RpcCode.invalidParams, message: thrown.message, status: 200 };
      case "bad_gateway":
        // The server's fault, but named for the client (the store's embedding provider answered wrongly).
        return { code: RpcCode.internalError, message: thrown.message, status: 200 };
    }
  }
  const error = coerceError(thrown);
  const reference = randomUUID();
  logger.error(`${where}:unhandled`, { reference, error: error.message, stack: error.stack });
  return { code: RpcCode.internalError, message: `Internal error (reference ${reference}; the server log has the details under this reference).`, status: 200 };
}
