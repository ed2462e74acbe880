/** Idempotency keys in the SQLite file (src/core/ports.ts IdempotencyKeys). */
import type { Database } from "better-sqlite3";
import type { IdempotencyClaim, IdempotencyKeys, IdempotencyRecord } from "../../core/ports.ts";
import type { JsonObject } from "../../core/types.ts";
import { json } from "./rows.ts";

interface Row {
  fingerprint: string;
  resource_id: string;
  response: string | null;
  claimed_at_ms: number;
}

const COLUMNS = "fingerprint, resource_id, response, created_at_ms AS claimed_at_ms";

const toRecord = (row: Row): IdempotencyRecord => ({
  fingerprint: row.fingerprint,
  resource_id: row.resource_id,
  response: row.response === null ? null : (JSON.parse(row.response) as JsonObject),
  claimed_at_ms: row.claimed_at_ms,
});

export class SqliteIdempotencyKeys implements IdempotencyKeys {
  constructor(private readonly db: Database) {}

  async claim(scope: string, key: string, record: { fingerprint: string; resource_id: string }, nowMs: number, ttlMs: number) {
    return this.db.transaction(() => {
      // An expired key is as good as absent: it gives way to this request.
      const taken = this.db
        .prepare(
          `INSERT INTO idempotency_keys (scope, key, fingerprint, resource_id, response, created_at_ms, expires_at_ms)
           VALUES (?, ?, ?, ?, NULL, ?, ?)
           ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, resource_id = excluded.resource_id,
             response = NULL, created_at_ms = excluded.created_at_ms, expires_at_ms = excluded.expires_at_ms
           WHERE idempotency_keys.expires_at_ms <= ?`,
        )
        .run(scope, key, record.fingerprint, record.resource_id, nowMs, nowMs + ttlMs, nowMs);
      if (taken.changes === 1) return { claimed: true as const };
      const row = this.db.prepare(`SELECT ${COLUMNS} FROM idempotency_keys WHERE scope = ? AND key = ?`).get(scope, key) as Row;
      return { claimed: false as const, record: toRecord(row) };
    }).immediate();
  }

  async complete(scope: string, key: string, claim: IdempotencyClaim, response: JsonObject): Promise<void> {
    this.db
      .prepare("UPDATE idempotency_keys SET response = ? WHERE scope = ? AND key = ? AND resource_id = ? AND created_at_ms = ?")
      .run(json(response), scope, key, claim.resource_id, claim.claimed_at_ms);
  }

  async release(scope: string, key: string, claim: IdempotencyClaim): Promise<void> {
    this.db
      .prepare("DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND resource_id = ? AND created_at_ms = ? AND response IS NULL")
      .run(scope, key, claim.resource_id, claim.claimed_at_ms);
  }

  async takeOver(scope: string, key: string, claim: IdempotencyClaim, nowMs: number): Promise<boolean> {
    const taken = this.db
      .prepare("UPDATE idempotency_keys SET created_at_ms = ? WHERE scope = ? AND key = ? AND resource_id = ? AND created_at_ms = ? AND response IS NULL")
      .run(nowMs, scope, key, claim.resource_id, claim.claimed_at_ms);
    return taken.changes === 1;
  }

  async get(scope: string, key: string, nowMs: number): Promise<IdempotencyRecord | null> {
    const row = this.db
      .prepare(`SELECT ${COLUMNS} FROM idempotency_keys WHERE scope = ? AND key = ? AND expires_at_ms > ?`)
      .get(scope, key, nowMs) as Row | undefined;
    return row === undefined ? null : toRecord(row);
  }

  async purge(nowMs: number): Promise<number> {
    return this.db.prepare("DELETE FROM idempotency_keys WHERE expires_at_ms <= ?").run(nowMs).changes;
  }
}
