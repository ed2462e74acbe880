/**
 * One error family with stable codes. The HTTP layer maps codes to statuses;
 * nothing below it knows about HTTP.
 */
export const ErrorCode = {
  notFound: "not_found",
  unauthorized: "unauthorized",
  forbidden: "forbidden",
  conflict: "conflict",
  busy: "thread_busy",
  invalid: "invalid_input",
  unsupported: "unsupported_field",
  leaseLost: "lease_lost",
  unavailable: "unavailable",
  tooMany: "too_many_requests",
  /** A service the server calls (the store's embedding provider) failed or did not answer: worth retrying later. */
  upstreamUnavailable: "upstream_unavailable",
  /** A service the server calls answered something unusable (vectors of the wrong shape): the server's fault, named. */
  badGateway: "bad_gateway",
  internal: "internal",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class BatonError extends Error {
  readonly code: ErrorCode;
  /** Seconds after which retrying makes sense (busy threads, load shedding). */
  readonly retryAfterSeconds: number | undefined;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "BatonError";
    this.code = code;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

export const notFound = (what: string, id: string): BatonError =>
  new BatonError(ErrorCode.notFound, `${what} '${id}' not found.`);
export const conflict = (message: string): BatonError => new BatonError(ErrorCode.conflict, message);
export const invalid = (message: string): BatonError => new BatonError(ErrorCode.invalid, message);

/** Turns anything thrown into an Error, wrapping non-errors with a cause. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  const error = new Error(typeof thrown === "string" ? thrown : JSON.stringify(thrown) ?? String(thrown));
  (error as Error & { cause?: unknown }).cause = thrown;
  return error;
}
