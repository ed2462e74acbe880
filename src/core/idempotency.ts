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
 *
 * A claim whose request never answers (its process crashed between the
 * claim and the answer) is taken over by a retry once it is `claimTimeoutMs`
 * old: the retry answers the record if the first request created it, else
 * creates it with the same id. The id fences the two: should the first
 * request still be alive after all, only one of them can create that id,
 * and the other answers what was created. Its claim no longer being the
 * key's, it can neither answer nor free the key.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Clock } from "./clock.ts";
import type { RequestContext } from "./context.ts";
import { BatonError, ErrorCode } from "./errors.ts";
import type { IdempotencyClaim, IdempotencyKeys, IdempotencyRecord } from "./ports.ts";
import type { JsonObject } from "./types.ts";

export interface IdempotencyDeps {
  keys: IdempotencyKeys;
  clock: Clock;
  /** How long a key is remembered (ms). */
  ttlMs: number;
  /** How long a retry waits for a first request still in flight before answering 409 (ms). Default 30 s. */
  waitMs?: number | undefined;
  /** How old an unanswered claim must be (ms, by the clock) for a retry to take it over. Default 60 s. */
  claimTimeoutMs?: number | undefined;
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
    recover: (id: string) => Promise<T | null>,
  ): Promise<T> {
    const key = ctx.idempotencyKey;
    if (key === undefined) return create(randomUUID());
    if (key.length > MAX_KEY_LENGTH) {
      throw new BatonError(ErrorCode.invalid, `The Idempotency-Key header is ${key.length} characters long; at most ${MAX_KEY_LENGTH} are accepted.`);
    }
    await this.#purgeNowAndThen();
    const { keys, clock } = this.#deps;
    const scope = `${kind}:${ctx.principal !== null ? `user:${ctx.principal.identity}` : "anonymous"}`;
    const fingerprint = fingerprintOf(request);
    const resourceId = randomUUID();
    const deadline = Date.now() + (this.#deps.waitMs ?? 30_000);
    const claimTimeoutMs = this.#deps.claimTimeoutMs ?? 60_000;
    for (;;) {
      const claimedAt = clock.nowMs();
      const claim = await keys.claim(scope, key, { fingerprint, resource_id: resourceId }, claimedAt, this.#deps.ttlMs);
      if (claim.claimed) return this.#create(scope, key, { resource_id: resourceId, claimed_at_ms: claimedAt, fresh: true }, create, recover);
      let record: IdempotencyRecord | null = claim.record;
      // The first request is still creating: wait for its answer (or for it to fail and free the key).
      while (record !== null && record.response === null && record.fingerprint === fingerprint) {
        const nowMs = clock.nowMs();
        if (nowMs - record.claimed_at_ms >= claimTimeoutMs) {
          // Unanswered for so long, its request is presumed dead: take the claim over.
          if (await keys.takeOver(scope, key, record, nowMs)) {
            const taken = { resource_id: record.resource_id, claimed_at_ms: nowMs, fresh: false };
            const created = await recover(record.resource_id).catch(async (error: unknown) => {
              // Not known whether the record exists: handed back for the next retry.
              await keys.takeOver(scope, key, taken, 0).catch(() => undefined);
              throw error;
            });
            if (created === null) return this.#create(scope, key, taken, create, recover);
            await keys.complete(scope, key, taken, toJson(created));
            return created;
          }
        } else if (Date.now() > deadline) {
          throw new BatonError(ErrorCode.conflict, `A request with Idempotency-Key '${key}' is still being processed; retry shortly.`, { retryAfterSeconds: 1 });
        } else {
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        }
        record = await keys.get(scope, key, clock.nowMs());
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

  /**
   * Creates under a claim (`fresh`: this request's own first claim, not a
   * takeover) and answers the key. When the creation fails:
   *
   * - nothing was created with the key's id, and the claim is this
   *   request's own: the key is freed (a 404, a 409, a 422...);
   * - the record exists and was made under another claim (a request
   *   presumed dead, or the retry that took over from it), or this claim is
   *   a takeover (the request it replaced made it): that record is the
   *   answer;
   * - otherwise (the record exists though this request's own creation
   *   failed, as when its commit's answer was lost; a takeover that failed;
   *   the lookup failed) the claim is handed back, ready for the next retry
   *   to take over at once and find out, and the error is this request's.
   *   A claim that was taken over is never deleted: the request it replaced
   *   may still create under its id.
   *
   * `recover` finds only records made with the key's own id, so it never
   * mistakes a record someone else made for this request's.
   */
  async #create<T extends object>(
    scope: string,
    key: string,
    claim: IdempotencyClaim & { fresh: boolean },
    create: (id: string) => Promise<T>,
    recover: (id: string) => Promise<T | null>,
  ): Promise<T> {
    const { keys, clock } = this.#deps;
    const own = { resource_id: claim.resource_id, claimed_at_ms: claim.claimed_at_ms };
    let created: T;
    try {
      created = await create(claim.resource_id);
    } catch (error) {
      let found: T | null | undefined;
      try {
        found = await recover(claim.resource_id);
      } catch {
        found = undefined;
      }
      if (found === null && claim.fresh) {
        await keys.release(scope, key, own).catch(() => undefined);
        throw error;
      }
      if (found !== null && found !== undefined) {
        const current = await keys.get(scope, key, clock.nowMs()).catch(() => null);
        const ours = current !== null && current.resource_id === own.resource_id && current.claimed_at_ms === own.claimed_at_ms;
        if (!claim.fresh || !ours) {
          if (ours) await keys.complete(scope, key, own, toJson(found));
          return found;
        }
      }
      await keys.takeOver(scope, key, own, 0).catch(() => undefined);
      throw error;
    }
    await keys.complete(scope, key, own, toJson(created));
    return created;
  }

  async #purgeNowAndThen(): Promise<void> {
    const now = this.#deps.clock.nowMs();
    if (now - this.#purgedAtMs < PURGE_EVERY_MS) return;
    this.#purgedAtMs = now;
    await this.#deps.keys.purge(now).catch(() => undefined);
  }
}

const toJson = (value: object): JsonObject => JSON.parse(JSON.stringify(value)) as JsonObject;

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
