/**
 * Cron records on SQLite (docs/crons.md). The fire key is claimed by the
 * run queue's create transaction (`claimCronFire`), with the run.
 */
import type { Database } from "better-sqlite3";
import type { Clock } from "../../core/clock.ts";
import { isoFromMs } from "../../core/clock.ts";
import { CronFireTaken, fireAllowed, pastFired, type Cron, type CronCheck, type CronFire, type CronPatchBuilder, type Crons, type CronSearch, type NewCron } from "../../core/crons.ts";
import type { Scoped } from "../../core/ports.ts";
import { compileFilter } from "../filter-sql.ts";
import { json, parse } from "./rows.ts";

interface CronRow {
  cron_id: string;
  assistant_id: string;
  thread_id: string | null;
  on_run_completed: string | null;
  end_time: string | null;
  schedule: string;
  timezone: string | null;
  created_at: string;
  updated_at: string;
  user_id: string | null;
  payload: string;
  next_run_ms: number | null;
  metadata: string;
  enabled: number;
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
  payload: parse(row.payload),
  next_run_ms: row.next_run_ms,
  metadata: parse(row.metadata),
  enabled: row.enabled === 1,
});

const SORTABLE: Record<NonNullable<CronSearch["sort_by"]>, string> = {
  cron_id: "cron_id",
  assistant_id: "assistant_id",
  thread_id: "thread_id",
  next_run_date: "next_run_ms",
  end_time: "end_time",
  created_at: "created_at",
  updated_at: "updated_at",
};

const PATCHABLE = ["schedule", "timezone", "end_time", "on_run_completed", "next_run_ms"] as const;

export class SqliteCrons implements Crons {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
  ) {}

  async create(input: NewCron): Promise<Cron> {
    const iso = isoFromMs(this.clock.nowMs());
    const row = this.db
      .prepare<unknown[], CronRow>(
        `INSERT INTO crons (cron_id, assistant_id, thread_id, on_run_completed, end_time, schedule, timezone, created_at, updated_at,
                            user_id, payload, next_run_ms, metadata, enabled)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
      )
      .get(
        input.cron_id,
        input.assistant_id,
        input.thread_id,
        input.on_run_completed,
        input.end_time,
        input.schedule,
        input.timezone,
        iso,
        iso,
        input.user_id,
        json(input.payload),
        input.next_run_ms,
        json(input.metadata),
        input.enabled ? 1 : 0,
      )!;
    return toCron(row);
  }

  async get(cronId: string, scope?: Scoped): Promise<Cron | null> {
    const args: unknown[] = [cronId];
    const clauses = ["cron_id = ?", ...compileFilter("sqlite", "metadata", { access: scope?.access }, args)];
    const row = this.db.prepare<unknown[], CronRow>(`SELECT * FROM crons WHERE ${clauses.join(" AND ")}`).get(...args);
    return row === undefined ? null : toCron(row);
  }

  async patch(cronId: string, build: CronPatchBuilder, scope?: Scoped): Promise<Cron | null> {
    return this.db
      .transaction((): Cron | null => {
        const current = this.#getSync(cronId, scope);
        if (current === null) return null;
        const patch = build(current, lastFireMs(this.db, cronId));
        const sets: string[] = ["updated_at = ?"];
        const args: unknown[] = [isoFromMs(this.clock.nowMs())];
        const set = (column: string, value: unknown) => {
          sets.push(`${column} = ?`);
          args.push(value);
        };
        for (const field of PATCHABLE) if (patch[field] !== undefined) set(field, patch[field]);
        if (patch.payload !== undefined) set("payload", json(patch.payload));
        if (patch.metadata !== undefined) set("metadata", json(patch.metadata));
        if (patch.enabled !== undefined) set("enabled", patch.enabled ? 1 : 0);
        args.push(cronId);
        return toCron(this.db.prepare<unknown[], CronRow>(`UPDATE crons SET ${sets.join(", ")} WHERE cron_id = ? RETURNING *`).get(...args)!);
      })
      .immediate();
  }

  #getSync(cronId: string, scope?: Scoped): Cron | null {
    const args: unknown[] = [cronId];
    const clauses = ["cron_id = ?", ...compileFilter("sqlite", "metadata", { access: scope?.access }, args)];
    const row = this.db.prepare<unknown[], CronRow>(`SELECT * FROM crons WHERE ${clauses.join(" AND ")}`).get(...args);
    return row === undefined ? null : toCron(row);
  }

  async delete(cronId: string, scope?: Scoped): Promise<boolean> {
    const args: unknown[] = [cronId];
    const clauses = ["cron_id = ?", ...compileFilter("sqlite", "metadata", { access: scope?.access }, args)];
    return this.db.prepare(`DELETE FROM crons WHERE ${clauses.join(" AND ")}`).run(...args).changes > 0;
  }

  async search(query: CronSearch): Promise<Cron[]> {
    const args: unknown[] = [];
    const where = this.#where(query, args);
    const column = SORTABLE[query.sort_by ?? "created_at"];
    args.push(query.limit, query.offset);
    return this.db
      .prepare<unknown[], CronRow>(`SELECT * FROM crons${where} ORDER BY ${column} IS NULL, ${column} ${query.sort_order === "asc" ? "ASC" : "DESC"}, cron_id LIMIT ? OFFSET ?`)
      .all(...args)
      .map(toCron);
  }

  async count(query: Omit<CronSearch, "limit" | "offset" | "sort_by" | "sort_order">): Promise<number> {
    const args: unknown[] = [];
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM crons${this.#where(query, args)}`).get(...args) as { n: number }).n;
  }

  async due(nowMs: number, limit: number, after?: { next_run_ms: number; cron_id: string }): Promise<Cron[]> {
    const cursor = after === undefined ? "" : " AND (next_run_ms, cron_id) > (?, ?)";
    const args: unknown[] = after === undefined ? [nowMs, limit] : [nowMs, after.next_run_ms, after.cron_id, limit];
    return this.db
      .prepare<unknown[], CronRow>(`SELECT * FROM crons WHERE enabled = 1 AND next_run_ms IS NOT NULL AND next_run_ms <= ?${cursor} ORDER BY next_run_ms, cron_id LIMIT ?`)
      .all(...args)
      .map(toCron);
  }

  async check(cronId: string, nowMs: number): Promise<CronCheck> {
    return this.db
      .transaction((): CronCheck => {
        const cron = this.#getSync(cronId);
        if (cron === null) return { state: "taken", reason: "the cron was deleted" };
        if (!cron.enabled || cron.next_run_ms === null || cron.next_run_ms > nowMs) return { state: "taken", reason: "the cron is no longer due (fired, patched or disabled)" };
        const moved = pastFired(cron, lastFireMs(this.db, cronId), nowMs);
        if (moved === undefined) return { state: "due", cron };
        this.db.prepare("UPDATE crons SET next_run_ms = ? WHERE cron_id = ?").run(moved, cronId);
        return { state: "taken", reason: "its next time was at or before a time already fired: moved past it" };
      })
      .immediate();
  }

  async nextDueMs(): Promise<number | null> {
    const row = this.db.prepare("SELECT MIN(next_run_ms) AS next FROM crons WHERE enabled = 1 AND next_run_ms IS NOT NULL").get() as { next: number | null };
    return row.next;
  }

  async advance(cronId: string, fromMs: number, nextMs: number | null): Promise<boolean> {
    return this.db.prepare("UPDATE crons SET next_run_ms = ? WHERE cron_id = ? AND next_run_ms = ?").run(nextMs, cronId, fromMs).changes > 0;
  }

  #where(query: Omit<CronSearch, "limit" | "offset" | "sort_by" | "sort_order">, args: unknown[]): string {
    const clauses: string[] = [];
    const equal = (column: string, value: unknown) => {
      clauses.push(`${column} = ?`);
      args.push(value);
    };
    if (query.assistant_id !== undefined) equal("assistant_id", query.assistant_id);
    if (query.thread_id !== undefined) equal("thread_id", query.thread_id);
    if (query.enabled !== undefined) equal("enabled", query.enabled ? 1 : 0);
    clauses.push(...compileFilter("sqlite", "metadata", { contains: query.metadata, access: query.access }, args));
    return clauses.length > 0 ? ` WHERE ${clauses.join(" AND ")}` : "";
  }
}

/**
 * Inside the run's create transaction: claims the fire key and moves the
 * cron to its next time, or throws `CronFireTaken` (nothing is created).
 * Older fire keys of the cron are dropped: its next time is past them.
 */
function lastFireMs(db: Database, cronId: string): number | null {
  return (db.prepare("SELECT MAX(fire_ms) AS last FROM cron_fires WHERE cron_id = ?").get(cronId) as { last: number | null }).last;
}

export function claimCronFire(db: Database, fire: CronFire, runId: string, nowMs: number): void {
  const row = db.prepare("SELECT enabled, next_run_ms FROM crons WHERE cron_id = ?").get(fire.cron_id) as { enabled: number; next_run_ms: number | null } | undefined;
  const refused = fireAllowed(row === undefined ? undefined : { enabled: row.enabled === 1, next_run_ms: row.next_run_ms }, fire);
  if (refused !== null) throw new CronFireTaken(fire, refused);
  const last = lastFireMs(db, fire.cron_id);
  if (last !== null && fire.scheduled_ms <= last) throw new CronFireTaken(fire, "that time is at or before one already fired");
  const claimed = db.prepare("INSERT INTO cron_fires (cron_id, fire_ms, run_id, fired_at_ms) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING").run(fire.cron_id, fire.scheduled_ms, runId, nowMs);
  if (claimed.changes === 0) throw new CronFireTaken(fire, "that time was already fired");
  db.prepare("DELETE FROM cron_fires WHERE cron_id = ? AND fire_ms < ?").run(fire.cron_id, fire.scheduled_ms);
  db.prepare("UPDATE crons SET next_run_ms = ? WHERE cron_id = ?").run(fire.next_ms, fire.cron_id);
}
