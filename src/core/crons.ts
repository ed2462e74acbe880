/**
 * Crons: the record, its port, and the schedule rules (docs/crons.md).
 *
 * A schedule is cron syntax read by croner: five fields (minute hour
 * day-of-month month day-of-week) as the official server takes them, or
 * six with seconds first (a Baton extension), in an IANA timezone (UTC when
 * none is given). Every time here is epoch milliseconds.
 *
 * Missed fires: a cron whose next fire time passed while no scheduler ran
 * fires once, for the latest scheduled time not after now (and not after
 * its end time), and the older missed times are skipped.
 */
import { Cron as CronPattern } from "croner";
import { BatonError, ErrorCode } from "./errors.ts";
import type { Page, Scoped } from "./ports.ts";
import type { JsonObject, Metadata, MultitaskStrategy, RunKwargs, StreamMode } from "./types.ts";

/** What happens to the thread a stateless cron's run ran on once the run ends. */
export type OnRunCompleted = "delete" | "keep";

export interface Cron {
  cron_id: string;
  assistant_id: string;
  /** The thread every run goes to; null: a stateless cron (a new thread per run). */
  thread_id: string | null;
  /** Stateless crons only (null for a thread's cron). */
  on_run_completed: OnRunCompleted | null;
  /** ISO time after which the cron fires no more; null: never ends. */
  end_time: string | null;
  schedule: string;
  /** IANA timezone the schedule is read in; null: UTC. */
  timezone: string | null;
  created_at: string;
  updated_at: string;
  /** Whose runs it fires (per-user caps, fair claiming), decided when it was created. */
  user_id: string | null;
  /** The run fields every fired run is created with (wire names: input, config, context, ...). */
  payload: JsonObject;
  /** The next time it fires; null when it will not (disabled, or past its end time or last match). */
  next_run_ms: number | null;
  metadata: Metadata;
  enabled: boolean;
}

export type NewCron = Omit<Cron, "created_at" | "updated_at">;

/** Fields a patch replaces (metadata is merged by the service before it gets here). */
export type CronPatch = Partial<Pick<Cron, "schedule" | "timezone" | "end_time" | "payload" | "metadata" | "enabled" | "on_run_completed" | "next_run_ms">>;

export interface CronSearch extends Page, Scoped {
  assistant_id?: string | undefined;
  thread_id?: string | undefined;
  enabled?: boolean | undefined;
  metadata?: Metadata | undefined;
  sort_by?: "cron_id" | "assistant_id" | "thread_id" | "next_run_date" | "end_time" | "created_at" | "updated_at" | undefined;
  sort_order?: "asc" | "desc" | undefined;
}

/**
 * A scheduled time being fired: claimed in the same transaction that
 * creates its run (RunQueue.create with `NewRun.cron_fire`).
 */
export interface CronFire {
  cron_id: string;
  /** The scheduled time (the fire key with `cron_id`). */
  scheduled_ms: number;
  /** The cron's next fire time after this one (null: none). */
  next_ms: number | null;
}

/**
 * Builds a patch from the cron as its row lock holds it, and its latest
 * fired time (null: none kept); may throw to refuse the patch. Synchronous:
 * SQLite runs it inside its write transaction.
 */
export type CronPatchBuilder = (current: Cron, lastFireMs: number | null) => CronPatch;

/** What the check before a fire found: the cron as it now is (fire it), or why not. */
export type CronCheck = { state: "due"; cron: Cron } | { state: "taken"; reason: string };

/** Cron records. An access filter reads the cron's metadata. */
export interface Crons {
  create(input: NewCron): Promise<Cron>;
  get(cronId: string, scope?: Scoped): Promise<Cron | null>;
  /**
   * Patches a cron in one transaction under its row lock (read, `build`,
   * write), so concurrent patches and fires do not overwrite each other.
   * Null when the cron does not exist (or is outside the scope).
   */
  patch(cronId: string, build: CronPatchBuilder, scope?: Scoped): Promise<Cron | null>;
  delete(cronId: string, scope?: Scoped): Promise<boolean>;
  search(query: CronSearch): Promise<Cron[]>;
  count(query: Omit<CronSearch, "limit" | "offset" | "sort_by" | "sort_order">): Promise<number>;
  /**
   * Enabled crons due at `nowMs` (next_run_ms at or before it), the most
   * overdue first (then by id), after the cursor `after` when given (the
   * last cron of the previous page).
   */
  due(nowMs: number, limit: number, after?: { next_run_ms: number; cron_id: string }): Promise<Cron[]>;
  /**
   * The cheap check before a fire, in its own short transaction: the cron
   * as it is now, locked (on Postgres a cron another transaction holds is
   * skipped: "taken"), if it is enabled and due by the database's clock. A
   * cron whose next time is at or before its latest fired time (put back
   * onto a time that already fired) is moved past that time here, in the
   * same transaction, and reported taken.
   */
  check(cronId: string, nowMs: number): Promise<CronCheck>;
  /** The earliest next fire time of any enabled cron, or null. */
  nextDueMs(): Promise<number | null>;
  /**
   * Moves a cron's next fire time on without firing (a fire its run could
   * not be created for), only while it still is `fromMs`: false otherwise.
   */
  advance(cronId: string, fromMs: number, nextMs: number | null): Promise<boolean>;
}

/**
 * Thrown by RunQueue.create when the fire key is already taken, or the cron
 * has moved on (fired by another scheduler, patched, disabled or deleted):
 * the scheduler skips it; nothing was created.
 */
export class CronFireTaken extends BatonError {
  constructor(fire: CronFire, why: string) {
    super(ErrorCode.conflict, `Cron '${fire.cron_id}' at ${new Date(fire.scheduled_ms).toISOString()} was not fired here: ${why}.`);
    this.name = "CronFireTaken";
  }
}

/**
 * Whether a fire of `cron` at `scheduledMs` may go ahead: the row the
 * transaction locked says so (undefined: deleted, or on Postgres locked by
 * another transaction, which is firing or patching it). `dbNowMs` is the
 * database's clock where it has one: a scheduler whose clock runs ahead
 * does not fire early.
 */
export function fireAllowed(row: { enabled: boolean; next_run_ms: number | null } | undefined, fire: CronFire, dbNowMs?: number): string | null {
  if (row === undefined) return "the cron was deleted, or another scheduler or a patch holds it";
  if (!row.enabled) return "the cron is disabled";
  if (row.next_run_ms === null || row.next_run_ms > fire.scheduled_ms) return "that time was already fired (or the cron was rescheduled)";
  if (dbNowMs !== undefined && fire.scheduled_ms > dbNowMs) return "that time has not come yet by the database's clock";
  return null;
}

/**
 * Where a cron whose next time is at or before its latest fired time
 * (`lastFireMs`) moves to: its first time after both that fire and now.
 * Undefined when it is not in that state. A schedule that no longer
 * parses gives null (the cron fires no more).
 */
export function pastFired(cron: Cron, lastFireMs: number | null, nowMs: number): number | null | undefined {
  if (lastFireMs === null || cron.next_run_ms === null || cron.next_run_ms > lastFireMs) return undefined;
  try {
    return nextFire(cron, Math.max(lastFireMs, nowMs));
  } catch {
    return null;
  }
}

/** A parsed schedule: validated once, then asked for fire times. */
export class Schedule {
  readonly #pattern: CronPattern;

  private constructor(pattern: CronPattern) {
    this.#pattern = pattern;
  }

  /**
   * Parses and checks a schedule; throws a 422 saying what to fix. With
   * `requireFuture` (the default), one with no time after `nowMs` is refused.
   */
  static parse(schedule: string, timezone: string | null, nowMs: number = Date.now(), requireFuture = true): Schedule {
    if (timezone !== null) checkTimezone(timezone);
    let pattern: CronPattern;
    try {
      pattern = new CronPattern(schedule.trim(), { timezone: timezone ?? "Etc/UTC", mode: "5-or-6-parts", paused: true });
    } catch (error) {
      throw new BatonError(
        ErrorCode.invalid,
        `Invalid schedule '${schedule.slice(0, 100)}': ${reason(error)}. Write cron syntax: five fields (minute hour day-of-month month day-of-week, e.g. '0 9 * * 1-5'), or six with seconds first.`,
      );
    }
    const schedule_ = new Schedule(pattern);
    if (requireFuture && schedule_.nextAfter(nowMs) === null) {
      throw new BatonError(ErrorCode.invalid, `Schedule '${schedule.slice(0, 100)}' never fires (no date matches it); check the day-of-month and month fields.`);
    }
    return schedule_;
  }

  /** The first fire time strictly after `ms`, or null. */
  nextAfter(ms: number): number | null {
    return this.#pattern.nextRun(new Date(ms))?.getTime() ?? null;
  }

  /** The latest fire time at or before `ms`, or null. */
  latestAtOrBefore(ms: number): number | null {
    // croner looks strictly before a whole second: start from the second after `ms`.
    const [previous] = this.#pattern.previousRuns(1, new Date(Math.floor(ms / 1000) * 1000 + 1000));
    return previous?.getTime() ?? null;
  }
}

function checkTimezone(timezone: string): void {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    throw new BatonError(ErrorCode.invalid, `Unknown timezone '${timezone.slice(0, 100)}': give an IANA timezone name such as 'UTC' or 'America/New_York', or leave it out for UTC.`);
  }
}

const reason = (error: unknown) => (error instanceof Error ? error.message.replace(/^CronPattern:\s*/, "") : String(error)).replace(/\.$/, "");

/**
 * When a cron fires next, from `afterMs` on: the next scheduled time,
 * unless it is disabled or the time is past its end (null: it will not).
 */
export function nextFire(cron: Pick<Cron, "schedule" | "timezone" | "end_time" | "enabled">, afterMs: number, schedule?: Schedule): number | null {
  if (!cron.enabled) return null;
  const next = (schedule ?? Schedule.parse(cron.schedule, cron.timezone, afterMs, false)).nextAfter(afterMs);
  if (next === null) return null;
  return cron.end_time !== null && next > Date.parse(cron.end_time) ? null : next;
}

/**
 * The scheduled time a due cron fires for at `nowMs` (the missed-fire
 * policy): the latest scheduled time not after now nor after its end time,
 * never before the stored next fire time (null: nothing to fire).
 */
export function fireTime(cron: Cron, nowMs: number, schedule?: Schedule): number | null {
  if (cron.next_run_ms === null || cron.next_run_ms > nowMs) return null;
  const bound = cron.end_time === null ? nowMs : Math.min(nowMs, Date.parse(cron.end_time));
  const latest = (schedule ?? Schedule.parse(cron.schedule, cron.timezone, nowMs, false)).latestAtOrBefore(bound);
  return latest === null || latest < cron.next_run_ms ? cron.next_run_ms : latest;
}

/** The run fields a cron's payload may carry (what its runs are created with). */
export interface CronRunFields {
  input?: unknown;
  config?: RunKwargs["config"] | undefined;
  context?: JsonObject | null | undefined;
  metadata?: Metadata | null | undefined;
  interrupt_before?: string[] | "*" | null | undefined;
  interrupt_after?: string[] | "*" | null | undefined;
  webhook?: string | null | undefined;
  multitask_strategy?: MultitaskStrategy | undefined;
  stream_mode?: StreamMode | StreamMode[] | undefined;
  stream_subgraphs?: boolean | undefined;
  stream_resumable?: boolean | undefined;
  durability?: "sync" | "async" | "exit" | null | undefined;
  checkpoint_during?: boolean | null | undefined;
}

/** `configurable` keys that carry the caller's identity to the graph: set by the server, never taken from a client. */
const isAuthKey = (key: string) => key.startsWith("langgraph_auth_");

/** The payload without client-supplied `config.configurable.langgraph_auth_*` keys (a cron's runs get its owner's identity instead). */
export function withoutAuthKeys<P extends JsonObject>(payload: P): P {
  const config = payload.config;
  if (typeof config !== "object" || config === null || Array.isArray(config)) return payload;
  const configurable = (config as JsonObject).configurable;
  if (typeof configurable !== "object" || configurable === null || Array.isArray(configurable)) return payload;
  if (!Object.keys(configurable).some(isAuthKey)) return payload;
  const kept = Object.fromEntries(Object.entries(configurable).filter(([key]) => !isAuthKey(key)));
  return { ...payload, config: { ...config, configurable: kept } };
}

/**
 * The identity a cron's runs carry in `configurable`, as a request's run
 * carries its caller's: the cron's owner (decided when it was created).
 * Nothing for a cron without an owner.
 */
function ownerIdentity(userId: string | null): Record<string, unknown> {
  if (userId === null) return {};
  const user = { identity: userId, display_name: userId, is_authenticated: true, permissions: [] as string[] };
  return { langgraph_auth_user: user, langgraph_auth_user_id: userId, langgraph_auth_permissions: user.permissions };
}

/**
 * The kwargs of a run a cron fires, from its payload: `langgraph_auth_*`
 * keys stored by a client are dropped and the owner's identity put in
 * their place.
 */
export function cronRunKwargs(payload: CronRunFields, onCompletion: OnRunCompleted, ownerId: string | null = null): Omit<RunKwargs, "temporary"> {
  const config = (withoutAuthKeys(payload as JsonObject) as CronRunFields).config ?? {};
  const identity = ownerIdentity(ownerId);
  const runConfig = Object.keys(identity).length === 0 ? config : { ...config, configurable: { ...config.configurable, ...identity } };
  const modes = payload.stream_mode === undefined ? ["values"] : Array.isArray(payload.stream_mode) ? payload.stream_mode : [payload.stream_mode];
  const durability = payload.durability ?? (payload.checkpoint_during === false ? "exit" : payload.checkpoint_during === true ? "async" : null);
  return {
    input: payload.input ?? null,
    command: null,
    config: runConfig,
    context: payload.context ?? null,
    stream_mode: (modes.length > 0 ? modes : ["values"]) as StreamMode[],
    stream_subgraphs: payload.stream_subgraphs ?? false,
    stream_resumable: payload.stream_resumable ?? false,
    interrupt_before: payload.interrupt_before ?? null,
    interrupt_after: payload.interrupt_after ?? null,
    checkpoint_id: null,
    checkpoint: null,
    webhook: payload.webhook ?? null,
    on_completion: onCompletion,
    durability,
    on_disconnect: "continue",
  };
}
