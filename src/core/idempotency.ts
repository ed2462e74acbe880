/**
 * `Idempotency-Key` on run and thread creation (docs/auth.md,
 * "Idempotency"): the first request with a key creates; a retry with the
 * same body answers what the first created (waiting while the first is
 * still in flight); a retry with a different body is refused (422). Keys
 * are scoped to the caller (the authenticated identity, or everyone
 * anonymous) and to the kind of record, and expire after `ttlMs`.
 *
 * The key is claimed in the database before anything is created, with the
 * id the record will have, so concurrent retries on any process create
 * exactly one record; a first request that fails frees the key.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Clock } from "./clock.ts";
import type { RequestContext } from "./context.ts";
import { BatonError, ErrorCode } from "./errors.ts";
import type { IdempotencyKeys, IdempotencyRecord } from "./ports.ts";
import type { JsonObject } from "./types.ts";

export interface IdempotencyDeps {
  keys: IdempotencyKeys;
  clock: Clock;
  /** How long a key is remembered (ms). */
  ttlMs: number;
  /** How long a retry waits for a first request still in flight before answering 409 (ms). Default 30 s. */
  waitMs?: number | undefined;
}

/** Longest key accepted (the header is the client's; a longer one is refused). */
export const MAX_KEY_LENGTH = 255;
/** How often a retry looks whether the first request has finished. */
const POLL_MS = 20;
/** How often expired keys are deleted, at most (by the clock). */
const PURGE_EVERY_MS = 60_000;

export class Idempotency {
  readonly #deps: IdempotencyDeps;
  #purgedAtMs = Number.NEGATIVE_INFINITY;

  constructor(deps: IdempotencyDeps) {
    this.#deps = deps;
  }

  /**
   * Creates once per key: `create(id)` makes the record with the id given;
   * `existing(record)` answers a retry from what the first request left.
   * Without a key, just `create` with a new id.
   */
  async once<T extends object>(
    ctx: RequestContext,
    kind: "run" | "thread",
    request: unknown,
    create: (id: string) => Promise<T>,
    existing: (record: IdempotencyRecord & { response: JsonObject }) => Promise<T>,
  ): Promise<T> {
    const key = ctx.idempotencyKey;
    if (key === undefined) return create(randomUUID());
    if (key.length > MAX_KEY_LENGTH) {
      throw new BatonError(ErrorCode.invalid, `The Idempotency-Key header is ${key.length} characters long; at most ${MAX_KEY_LENGTH} are accepted.`);
    }
    await this.#purgeNowAndThen();
    const scope = `${kind}:${ctx.principal !== null ? `user:${ctx.principal.identity}` : "anonymous"}`;
    const fingerprint = fingerprintOf(request);
    const resourceId = randomUUID();
    const deadline = Date.now() + (this.#deps.waitMs ?? 30_000);
    for (;;) {
      const claim = await this.#deps.keys.claim(scope, key, { fingerprint, resource_id: resourceId }, this.#deps.clock.nowMs(), this.#deps.ttlMs);
      if (claim.claimed) {
        let created: T;
        try {
          created = await create(resourceId);
        } catch (error) {
          await this.#deps.keys.release(scope, key, resourceId).catch(() => undefined);
          throw error;
        }
        await this.#deps.keys.complete(scope, key, resourceId, JSON.parse(JSON.stringify(created)) as JsonObject);
        return created;
      }
      let record: IdempotencyRecord | null = claim.record;
      // The first request is still creating: wait for its answer (or for it to fail and free the key).
      while (record !== null && record.response === null && record.fingerprint === fingerprint) {
        if (Date.now() > deadline) {
          throw new BatonError(ErrorCode.conflict, `A request with Idempotency-Key '${key}' is still being processed; retry shortly.`, { retryAfterSeconds: 1 });
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        record = await this.#deps.keys.get(scope, key, this.#deps.clock.nowMs());
      }
      if (record === null) continue;
      if (record.fingerprint !== fingerprint) {
        throw new BatonError(
          ErrorCode.invalid,
          `Idempotency-Key '${key}' was already used with a different request; send the same request to retry it, or a new key for a new request.`,
        );
      }
      return existing(record as IdempotencyRecord & { response: JsonObject });
    }
  }

  async #purgeNowAndThen(): Promise<void> {
    const now = this.#deps.clock.nowMs();
    if (now - this.#purgedAtMs < PURGE_EVERY_MS) return;
    this.#purgedAtMs = now;
    await this.#deps.keys.purge(now).catch(() => undefined);
  }
}

/** A digest of the request that does not depend on key order. */
export function fingerprintOf(request: unknown): string {
  return createHash("sha256").update(stableJson(request)).digest("hex");
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((item) => stableJson(item === undefined ? null : item)).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
