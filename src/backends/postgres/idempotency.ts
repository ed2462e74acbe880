/** Idempotency keys in Postgres (src/core/ports.ts IdempotencyKeys). */
import type pg from "pg";
import type { IdempotencyClaim, IdempotencyKeys, IdempotencyRecord } from "../../core/ports.ts";
import type { JsonObject } from "../../core/types.ts";
import { asUnavailable, retryUnavailable } from "./database.ts";
import { jsonb } from "./rows.ts";

export class PostgresIdempotencyKeys implements IdempotencyKeys {
  constructor(private readonly pool: pg.Pool) {}

  async claim(
    scope: string,
    key: string,
    record: { fingerprint: string; resource_id: string },
    nowMs: number,
    ttlMs: number,
  ): Promise<{ claimed: true } | { claimed: false; record: IdempotencyRecord }> {
    // One statement: concurrent claims of one key serialize on its row; an
    // expired key gives way. Not retried across a lost connection: a claim
    // whose answer was lost would look taken by someone else on retry.
    const taken = await this.pool.query(
      `INSERT INTO idempotency_keys (scope, key, fingerprint, resource_id, response, created_at_ms, expires_at_ms)
       VALUES ($1, $2, $3, $4, NULL, $5, $6)
       ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, resource_id = excluded.resource_id,
         response = NULL, created_at_ms = excluded.created_at_ms, expires_at_ms = excluded.expires_at_ms
       WHERE idempotency_keys.expires_at_ms <= $5`,
      [scope, key, record.fingerprint, record.resource_id, nowMs, nowMs + ttlMs],
    ).catch((error: unknown) => {
      throw asUnavailable(error);
    });
    if (taken.rowCount === 1) return { claimed: true as const };
    const existing = await this.get(scope, key, Number.MIN_SAFE_INTEGER);
    // Released between the two statements: the caller tries again.
    if (existing === null) return this.claim(scope, key, record, nowMs, ttlMs);
    return { claimed: false as const, record: existing };
  }

  async complete(scope: string, key: string, claim: IdempotencyClaim, response: JsonObject): Promise<void> {
    await retryUnavailable(() =>
      this.pool.query("UPDATE idempotency_keys SET response = $5::jsonb WHERE scope = $1 AND key = $2 AND resource_id = $3 AND created_at_ms = $4", [
        scope,
        key,
        claim.resource_id,
        claim.claimed_at_ms,
        jsonb(response),
      ]),
    );
  }

  async release(scope: string, key: string, claim: IdempotencyClaim): Promise<void> {
    await retryUnavailable(() =>
      this.pool.query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND resource_id = $3 AND created_at_ms = $4 AND response IS NULL", [
        scope,
        key,
        claim.resource_id,
        claim.claimed_at_ms,
      ]),
    );
  }

  async takeOver(scope: string, key: string, claim: IdempotencyClaim, nowMs: number): Promise<boolean> {
    // Not retried across a lost connection, as a claim is not: a takeover whose answer was lost looks lost.
    const taken = await this.pool
      .query("UPDATE idempotency_keys SET created_at_ms = $5 WHERE scope = $1 AND key = $2 AND resource_id = $3 AND created_at_ms = $4 AND response IS NULL", [
        scope,
        key,
        claim.resource_id,
        claim.claimed_at_ms,
        nowMs,
      ])
      .catch((error: unknown) => {
        throw asUnavailable(error);
      });
    return taken.rowCount === 1;
  }

  async get(scope: string, key: string, nowMs: number): Promise<IdempotencyRecord | null> {
    const { rows } = await retryUnavailable(() =>
      this.pool.query<IdempotencyRecord>(
        "SELECT fingerprint, resource_id, response, created_at_ms AS claimed_at_ms FROM idempotency_keys WHERE scope = $1 AND key = $2 AND expires_at_ms > $3",
        [scope, key, nowMs],
      ),
    );
    return rows[0] ?? null;
  }

  async purge(nowMs: number): Promise<number> {
    const result = await retryUnavailable(() => this.pool.query("DELETE FROM idempotency_keys WHERE expires_at_ms <= $1", [nowMs]));
    return result.rowCount ?? 0;
  }
}
