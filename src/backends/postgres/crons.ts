/**
 * Cron records on Postgres (docs/crons.md). The fire key is claimed by the
 * run queue's create transaction (`claimCronFire`), with the run, under a
 * lock on the cron's row, so schedulers in any number of processes fire
 * each scheduled time once.
 */
import type pg from "pg";
import type { Clock } from "../../core/clock.ts";
import { isoFromMs } from "../../core/clock.ts";
import { CronFireTaken, fireAllowed, pastFired, type Cron, type CronCheck, type CronFire, type CronPatchBuilder, type Crons, type CronSearch, type NewCron } from "../../core/crons.ts";
import type { Scoped } from "../../core/ports.ts";
import { compileFilter } from "../filter-sql.ts";
import { transaction, type Queryable } from "./database.ts";
import { jsonb } from "./rows.ts";

interface CronRow extends Omit<Cron, "on_run_completed"> {
  on_run_completed: string | null;
}

const toCron = (row: CronRow): Cron => ({
  cron_id: row.cron_id,
  assistant_id: row.assistant_id,
  thread_id: row.thread_id,
  on_run_completed: row.on_run_completed as Cron["on_run_completed"],
  end_time: row.end_time,
  schedule: row.schedule,
  timezone: row.timezone,
  created_at: row.created_at,
  updated_at: row.updated_at,
  user_id: row.user_id,
  payload: row.payload,
  next_run_ms: row.next_run_ms,
  metadata: row.metadata,
  enabled: row.enabled,
});

const SORTABLE: Record<NonNullable<CronSearch["sort_by"]>, string> = {
  cron_id: 'cron_id COLLATE "C"',
  assistant_id: 'assistant_id COLLATE "C"',
  thread_id: 'thread_id COLLATE "C"',
  next_run_date: "next_run_ms",
  end_time: 'end_time COLLATE "C"',
  created_at: 'created_at COLLATE "C"',
  updated_at: 'updated_at COLLATE "C"',
};

const PATCHABLE = ["schedule", "timezone", "end_time", "on_run_completed", "next_run_ms", "enabled"] as const;

export class PostgresCrons implements Crons {
  constructor(
    private readonly pool: pg.Pool,
    private readonly clock: Clock,
  ) {}

  async create(input: NewCron): Promise<Cron> {
    const iso = isoFromMs(this.clock.nowMs());
    const { rows } = await this.pool.query<CronRow>(
      `INSERT INTO crons (cron_id, assistant_id, thread_id, on_run_completed, end_time, schedule, timezone, created_at, updated_at,
                          user_id, payload, next_run_ms, metadata, enabled)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10::jsonb, $11, $12::jsonb, $13) RETURNING *`,
      [
        input.cron_id,
        input.assistant_id,
        input.thread_id,
        input.on_run_completed,
        input.end_time,
        input.schedule,
        input.timezone,
        iso,
        input.user_id,
        jsonb(input.payload),
        input.next_run_ms,
        jsonb(input.metadata),
        input.enabled,
      ],
    );
    return toCron(rows[0]!);
  }

  async get(cronId: string, scope?: Scoped): Promise<Cron | null> {
    const args: unknown[] = [cronId];
    const clauses = ["cron_id = $1", ...compileFilter("postgres", "metadata", { access: scope?.access }, args)];
    const { rows } = await this.pool.query<CronRow>(`SELECT * FROM crons WHERE ${clauses.join(" AND ")}`, args);
    return rows[0] === undefined ? null : toCron(rows[0]);
  }

  async patch(cronId: string, build: CronPatchBuilder, scope?: Scoped): Promise<Cron | null> {
    return transaction(this.pool, async (db) => {
      const args: unknown[] = [cronId];
      const clauses = ["cron_id = $1", ...compileFilter("postgres", "metadata", { access: scope?.access }, args)];
      const locked = await db.query<CronRow>(`SELECT * FROM crons WHERE ${clauses.join(" AND ")} FOR UPDATE`, args);
      if (locked.rows[0] === undefined) return null;
      const patch = build(toCron(locked.rows[0]), await lastFireMs(db, cronId));
      const values: unknown[] = [isoFromMs(this.clock.nowMs())];
      const sets: string[] = ["updated_at = $1"];
      const set = (column: string, value: unknown, cast = "") => {
        values.push(value);
        sets.push(`${column} = $${values.length}${cast}`);
      };
      for (const field of PATCHABLE) if (patch[field] !== undefined) set(field, patch[field]);
      if (patch.payload !== undefined) set("payload", jsonb(patch.payload), "::jsonb");
      if (patch.metadata !== undefined) set("metadata", jsonb(patch.metadata), "::jsonb");
      values.push(cronId);
      const { rows } = await db.query<CronRow>(`UPDATE crons SET ${sets.join(", ")} WHERE cron_id = $${values.length} RETURNING *`, values);
      return toCron(rows[0]!);
    });
  }

  async delete(cronId: string, scope?: Scoped): Promise<boolean> {
    const args: unknown[] = [cronId];
    const clauses = ["cron_id = $1", ...compileFilter("postgres", "metadata", { access: scope?.access }, args)];
    return ((await this.pool.query(`DELETE FROM crons WHERE ${clauses.join(" AND ")}`, args)).rowCount ?? 0) > 0;
  }

  async search(query: CronSearch): Promise<Cron[]> {
    const args: unknown[] = [];
    const where = this.#where(query, args);
    const column = SORTABLE[query.sort_by ?? "created_at"];
    args.push(query.limit, query.offset);
    const sql = `SELECT * FROM crons${where} ORDER BY ${column} ${query.sort_order === "asc" ? "ASC" : "DESC"} NULLS LAST, cron_id COLLATE "C" LIMIT $${args.length - 1} OFFSET $${args.length}`;
    return (await this.pool.query<CronRow>(sql, args)).rows.map(toCron);
  }

  async count(query: Omit<CronSearch, "limit" | "offset" | "sort_by" | "sort_order">): Promise<number> {
    const args: unknown[] = [];
    return (await this.pool.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM crons${this.#where(query, args)}`, args)).rows[0]!.n;
  }

  async due(nowMs: number, limit: number, after?: { next_run_ms: number; cron_id: string }): Promise<Cron[]> {
    const cursor = after === undefined ? "" : ' AND (next_run_ms, cron_id COLLATE "C") > ($3, $4 COLLATE "C")';
    const args: unknown[] = after === undefined ? [nowMs, limit] : [nowMs, limit, after.next_run_ms, after.cron_id];
    const { rows } = await this.pool.query<CronRow>(
      `SELECT * FROM crons WHERE enabled AND next_run_ms IS NOT NULL AND next_run_ms <= $1${cursor} ORDER BY next_run_ms, cron_id COLLATE "C" LIMIT $2`,
      args,
    );
    return rows.map(toCron);
  }

  async check(cronId: string, nowMs: number): Promise<CronCheck> {
    return transaction(this.pool, async (db): Promise<CronCheck> => {
      // SKIP LOCKED: a cron another scheduler is firing (or a patch holds) is theirs; waiting would only find it moved on.
      const { rows } = await db.query<CronRow & { db_now_ms: number }>(`SELECT *, ${DB_NOW_MS} AS db_now_ms FROM crons WHERE cron_id = $1 FOR UPDATE SKIP LOCKED`, [cronId]);
      const row = rows[0];
      if (row === undefined) return { state: "taken", reason: "another scheduler or a patch holds the cron (or it was deleted)" };
      const cron = toCron(row);
      if (!cron.enabled || cron.next_run_ms === null || cron.next_run_ms > Math.min(nowMs, row.db_now_ms)) {
        return { state: "taken", reason: "the cron is not due (fired, patched or disabled, or not yet by the database's clock)" };
      }
      const moved = pastFired(cron, await lastFireMs(db, cronId), nowMs);
      if (moved === undefined) return { state: "due", cron };
      await db.query("UPDATE crons SET next_run_ms = $1 WHERE cron_id = $2", [moved, cronId]);
      return { state: "taken", reason: "its next time was at or before a time already fired: moved past it" };
    });
  }

  async nextDueMs(): Promise<number | null> {
    const { rows } = await this.pool.query<{ next: number | null }>("SELECT MIN(next_run_ms) AS next FROM crons WHERE enabled AND next_run_ms IS NOT NULL");
    return rows[0]?.next ?? null;
  }

  async advance(cronId: string, fromMs: number, nextMs: number | null): Promise<boolean> {
    const result = await this.pool.query("UPDATE crons SET next_run_ms = $1 WHERE cron_id = $2 AND next_run_ms = $3", [nextMs, cronId, fromMs]);
    return (result.rowCount ?? 0) > 0;
  }

  #where(query: Omit<CronSearch, "limit" | "offset" | "sort_by" | "sort_order">, args: unknown[]): string {
    const clauses: string[] = [];
    const equal = (column: string, value: unknown) => {
      args.push(value);
      clauses.push(`${column} = $${args.length}`);
    };
    if (query.assistant_id !== undefined) equal("assistant_id", query.assistant_id);
    if (query.thread_id !== undefined) equal("thread_id", query.thread_id);
    if (query.enabled !== undefined) equal("enabled", query.enabled);
    clauses.push(...compileFilter("postgres", "metadata", { contains: query.metadata, access: query.access }, args));
    return clauses.length > 0 ? ` WHERE ${clauses.join(" AND ")}` : "";
  }
}

/** The database's clock in epoch ms (a scheduler's own clock may run ahead). */
const DB_NOW_MS = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::float8";

async function lastFireMs(db: Queryable, cronId: string): Promise<number | null> {
  const { rows } = await db.query<{ last: number | null }>("SELECT MAX(fire_ms) AS last FROM cron_fires WHERE cron_id = $1", [cronId]);
  return rows[0]?.last ?? null;
}

/**
 * Inside the run's create transaction: locks the cron's row, claims the
 * fire key and moves the cron to its next time, or throws `CronFireTaken`
 * (the transaction then creates nothing). A second scheduler racing for
 * the same time waits on the row lock, then finds the cron moved on.
 */
export async function claimCronFire(db: Queryable, fire: CronFire, runId: string, nowMs: number): Promise<void> {
  // SKIP LOCKED: a scheduler racing for the same time gives up at once instead of queueing behind the winner's transaction.
  const { rows } = await db.query<{ enabled: boolean; next_run_ms: number | null; db_now_ms: number }>(
    `SELECT enabled, next_run_ms, ${DB_NOW_MS} AS db_now_ms FROM crons WHERE cron_id = $1 FOR UPDATE SKIP LOCKED`,
    [fire.cron_id],
  );
  const refused = fireAllowed(rows[0], fire, rows[0]?.db_now_ms);
  if (refused !== null) throw new CronFireTaken(fire, refused);
  const last = await lastFireMs(db, fire.cron_id);
  if (last !== null && fire.scheduled_ms <= last) throw new CronFireTaken(fire, "that time is at or before one already fired");
  const claimed = await db.query(
    "INSERT INTO cron_fires (cron_id, fire_ms, run_id, fired_at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (cron_id, fire_ms) DO NOTHING",
    [fire.cron_id, fire.scheduled_ms, runId, nowMs],
  );
  if ((claimed.rowCount ?? 0) === 0) throw new CronFireTaken(fire, "that time was already fired");
  await db.query("DELETE FROM cron_fires WHERE cron_id = $1 AND fire_ms < $2", [fire.cron_id, fire.scheduled_ms]);
  await db.query("UPDATE crons SET next_run_ms = $1 WHERE cron_id = $2", [fire.next_ms, fire.cron_id]);
}
