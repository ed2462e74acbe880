/**
 * Crons as the API offers them (create on a thread or stateless, get,
 * patch, delete, search, count), and the firing of due crons the
 * scheduler asks for (docs/crons.md).
 *
 * Every action asks the Authorizer first with the official action
 * (`crons:create|read|update|delete|search`) and acts on the value it
 * hands back; its filter reads the cron's metadata, so a cron outside it
 * is not found (404) and left out of a search or count. A thread's cron
 * is refused (404) when the thread is outside the filter too.
 *
 * A due cron fires through RunService with its fire key (exactly once per
 * scheduled time across processes: the key is claimed in the transaction
 * that creates the run), owned by the cron's user, at CRON_PRIORITY.
 */
import { randomUUID } from "node:crypto";
import { assistantIdFor, resolveAssistant } from "./assistants.ts";
import { restricts, type Authorizer } from "./authorizer.ts";
import type { Clock } from "./clock.ts";
import type { RequestContext } from "./context.ts";
import { BatonError, ErrorCode, notFound } from "./errors.ts";
import { matches } from "./filter.ts";
import type { Assistants, Threads } from "./ports.ts";
import { CronFireTaken, fireTime, nextFire, Schedule, withoutAuthKeys, type Cron, type CronFire, type CronPatch, type CronRunFields, type Crons, type CronSearch, type OnRunCompleted } from "./crons.ts";
import { isoFromMs } from "./clock.ts";
import { ownerOf, type RunService } from "./runs.ts";
import type { JsonObject, Metadata } from "./types.ts";

export interface CronServiceDeps {
  crons: Crons;
  assistants: Assistants;
  threads: Threads;
  /** The loaded graphs: ids (a graph id names its system assistant), and whether one is loaded. */
  registry: { ids: readonly string[]; has(graphId: string): boolean };
  runs: RunService;
  authorizer: Authorizer;
  clock: Clock;
  /** Told when a cron's next fire time may have changed (the scheduler re-arms). */
  changed?: () => void;
}

/** A cron as a create request describes it. */
export interface NewCronInput {
  /** The thread every run goes to; null: stateless (a new thread per run). */
  thread_id: string | null;
  assistant_id: string;
  schedule: string;
  timezone: string | null;
  end_time: string | null;
  enabled: boolean;
  /** Stateless crons only; undefined: "delete". */
  on_run_completed: OnRunCompleted | undefined;
  metadata: Metadata;
  /** The run fields (input, config, context, webhook, ...). */
  payload: CronRunFields & JsonObject;
}

/** What a patch changes; undefined leaves a field as it is (`end_time: null` clears it). */
export interface CronPatchInput {
  schedule?: string | undefined;
  timezone?: string | null | undefined;
  end_time?: string | null | undefined;
  enabled?: boolean | undefined;
  on_run_completed?: OnRunCompleted | undefined;
  /** Merged into the cron's metadata. */
  metadata?: Metadata | undefined;
  /** Run fields replacing those the payload had. */
  payload?: CronRunFields & JsonObject;
}

type CronQuery = Omit<CronSearch, "access">;

/**
 * What firing a due cron came to: its run was created, another scheduler
 * had fired that time (or holds the cron), the run was refused (that time
 * skipped), or it failed in a way worth retrying (the cron stays due).
 */
export type CronFireOutcome = { cron_id: string; scheduled_ms: number; next_ms: number | null } & (
  | { result: "fired"; run_id: string; thread_id: string }
  | { result: "taken" | "refused" | "retry"; reason: string }
);

/** Crons the scheduler fires per look (it looks again at once when there were more). */
const FIRE_BATCH = 100;

export class CronService {
  readonly #deps: CronServiceDeps;

  constructor(deps: CronServiceDeps) {
    this.#deps = deps;
  }

  async create(ctx: RequestContext, input: NewCronInput): Promise<Cron> {
    const cronId = randomUUID();
    const { value, filter } = await this.#deps.authorizer.authorize(ctx, "crons", "create", {
      cron_id: cronId,
      thread_id: input.thread_id,
      schedule: input.schedule,
      end_time: input.end_time,
      payload: input.payload,
      metadata: input.metadata,
      // Whose runs they will be, as far as the request says before the thread is read (src/core/runs.ts ownerOf).
      user_id: ctx.principal?.identity || ctx.user || null,
    });
    if (input.thread_id !== null && input.on_run_completed !== undefined) {
      throw new BatonError(ErrorCode.invalid, "on_run_completed applies to stateless crons (POST /runs/crons) only: a thread's cron runs on its thread, which stays. Leave it out.");
    }
    const timezone = input.timezone;
    Schedule.parse(value.schedule, timezone, this.#deps.clock.nowMs());
    const assistant = await resolveAssistant(this.#deps.assistants, this.#deps.registry.ids, input.assistant_id);
    if (!this.#deps.registry.has(assistant.graph_id)) {
      throw new BatonError(ErrorCode.notFound, `Graph '${assistant.graph_id}' of assistant '${assistant.assistant_id}' is not loaded.`);
    }
    const thread = input.thread_id === null ? null : await this.#deps.threads.get(input.thread_id);
    if (input.thread_id !== null && (thread === null || (restricts(filter) && !matches(thread.metadata, filter)))) throw notFound("Thread", input.thread_id);
    const metadata = value.metadata ?? {};
    const schedule = { schedule: value.schedule, timezone, end_time: normalisedEndTime(value.end_time), enabled: input.enabled };
    const cron = await this.#deps.crons.create({
      cron_id: cronId,
      assistant_id: assistant.assistant_id,
      thread_id: input.thread_id,
      on_run_completed: input.thread_id === null ? (input.on_run_completed ?? "delete") : null,
      ...schedule,
      user_id: value.user_id ?? ownerOf(ctx, metadata, thread),
      payload: withoutAuthKeys(value.payload ?? {}),
      next_run_ms: nextFire(schedule, this.#deps.clock.nowMs()),
      metadata,
    });
    this.#deps.changed?.();
    return cron;
  }

  async get(ctx: RequestContext, cronId: string): Promise<Cron> {
    const { value, filter } = await this.#deps.authorizer.authorize(ctx, "crons", "read", { cron_id: cronId });
    const cron = await this.#deps.crons.get(value.cron_id, { access: filter });
    if (cron === null) throw notFound("Cron", cronId);
    return cron;
  }

  /**
   * Patches a cron under its row lock (docs/crons.md). Its next fire time
   * is recomputed only when the schedule, timezone, end time or enabled
   * flag change, from the later of now and its latest fired time, so a
   * patch never puts it back onto a time that already fired, and a patch
   * of metadata or run fields alone keeps a fire that is due.
   */
  async update(ctx: RequestContext, cronId: string, patch: CronPatchInput): Promise<Cron> {
    const { value, filter } = await this.#deps.authorizer.authorize(ctx, "crons", "update", {
      cron_id: cronId,
      payload: patch.payload,
      schedule: patch.schedule,
      metadata: patch.metadata,
    });
    const nowMs = this.#deps.clock.nowMs();
    const endTime = patch.end_time === undefined ? undefined : normalisedEndTime(patch.end_time);
    const updated = await this.#deps.crons.patch(
      cronId,
      (current, lastFireMs): CronPatch => {
        if (patch.on_run_completed !== undefined && current.thread_id !== null) {
          throw new BatonError(ErrorCode.invalid, "on_run_completed applies to stateless crons only: this cron runs on thread '" + current.thread_id + "'. Leave it out.");
        }
        const next = {
          schedule: value.schedule ?? current.schedule,
          timezone: patch.timezone === undefined ? current.timezone : patch.timezone,
          end_time: endTime === undefined ? current.end_time : endTime,
          enabled: patch.enabled ?? current.enabled,
        };
        const rescheduled =
          next.schedule !== current.schedule || next.timezone !== current.timezone || next.end_time !== current.end_time || next.enabled !== current.enabled;
        if (rescheduled) Schedule.parse(next.schedule, next.timezone, nowMs);
        return {
          ...(rescheduled ? { ...next, next_run_ms: nextFire(next, Math.max(nowMs, lastFireMs ?? nowMs)) } : {}),
          on_run_completed: patch.on_run_completed,
          payload: value.payload === undefined ? undefined : withoutAuthKeys({ ...current.payload, ...value.payload }),
          metadata: value.metadata === undefined ? undefined : { ...current.metadata, ...value.metadata },
        };
      },
      { access: filter },
    );
    if (updated === null) throw notFound("Cron", cronId);
    this.#deps.changed?.();
    return updated;
  }

  async delete(ctx: RequestContext, cronId: string): Promise<void> {
    const { value, filter } = await this.#deps.authorizer.authorize(ctx, "crons", "delete", { cron_id: cronId });
    if (!(await this.#deps.crons.delete(value.cron_id, { access: filter }))) throw notFound("Cron", cronId);
    this.#deps.changed?.();
  }

  async search(ctx: RequestContext, query: CronQuery): Promise<Cron[]> {
    const { value, filter } = await this.#deps.authorizer.authorize(ctx, "crons", "search", {
      assistant_id: query.assistant_id,
      thread_id: query.thread_id,
      limit: query.limit,
      offset: query.offset,
    });
    return this.#deps.crons.search({ ...query, ...value, assistant_id: this.#assistantId(value.assistant_id), access: filter });
  }

  async count(ctx: RequestContext, query: Omit<CronQuery, "limit" | "offset" | "sort_by" | "sort_order">): Promise<number> {
    const { value, filter } = await this.#deps.authorizer.authorize(ctx, "crons", "search", { assistant_id: query.assistant_id, thread_id: query.thread_id });
    return this.#deps.crons.count({ ...query, ...value, assistant_id: this.#assistantId(value.assistant_id), access: filter });
  }

  /** A graph id names its system assistant, as in run requests. */
  #assistantId(idOrGraph: string | undefined): string | undefined {
    return idOrGraph === undefined ? undefined : assistantIdFor(this.#deps.registry.ids, idOrGraph);
  }

  /** The earliest time any enabled cron fires next (null: none), for the scheduler's timer. */
  nextDueMs(): Promise<number | null> {
    return this.#deps.crons.nextDueMs();
  }

  /**
   * Fires every cron due at `nowMs` (each scheduled time once: docs/crons.md),
   * each at most once per call, and says what became of each. A cron that
   * fails is dealt with alone (logged by the scheduler from its outcome);
   * the others still fire.
   */
  async fireDue(nowMs: number): Promise<CronFireOutcome[]> {
    const outcomes: CronFireOutcome[] = [];
    let after: { next_run_ms: number; cron_id: string } | undefined;
    for (;;) {
      const due = await this.#deps.crons.due(nowMs, FIRE_BATCH, after);
      const fired: CronFireOutcome[] = [];
      try {
        for (const cron of due) {
          const outcome = await this.#fire(cron, nowMs);
          if (outcome !== null) fired.push(outcome);
        }
      } finally {
        // One work signal for the batch's runs (in scale-out each is a Redis message that wakes every worker).
        if (fired.some((o) => o.result === "fired")) this.#deps.runs.signalWork();
        outcomes.push(...fired);
      }
      if (due.length < FIRE_BATCH) return outcomes;
      const last = due[due.length - 1]!;
      after = { next_run_ms: last.next_run_ms!, cron_id: last.cron_id };
    }
  }

  /**
   * Fires one due cron for its scheduled time (the latest one not after
   * now: older missed times are skipped). First a cheap check under the
   * cron's lock (taken by another scheduler: skipped at once), and the run
   * is built from the cron as that check read it. A time another scheduler
   * fired first is skipped ("taken"). A run the domain refuses (its thread
   * busy under `reject`, the assistant or thread gone, an invalid run:
   * conflict, not found, invalid) skips that time ("refused"). A schedule
   * that no longer parses stops the cron (next_run_date null, "refused").
   * Anything else (a full queue, a database error, a bug) leaves the cron
   * due, to be tried again after the scheduler's backoff ("retry").
   */
  async #fire(due: Cron, nowMs: number): Promise<CronFireOutcome | null> {
    const base = { cron_id: due.cron_id, scheduled_ms: due.next_run_ms!, next_ms: due.next_run_ms };
    let cron = due;
    let fire: CronFire;
    try {
      const checked = await this.#deps.crons.check(due.cron_id, nowMs);
      if (checked.state === "taken") return { ...base, result: "taken", reason: checked.reason };
      cron = checked.cron;
      const schedule = Schedule.parse(cron.schedule, cron.timezone, nowMs, false);
      const scheduled = fireTime(cron, nowMs, schedule);
      if (scheduled === null) return null;
      fire = { cron_id: cron.cron_id, scheduled_ms: scheduled, next_ms: nextFire(cron, Math.max(scheduled, nowMs), schedule) };
    } catch (error) {
      if (!(error instanceof BatonError && error.code === ErrorCode.invalid)) return { ...base, result: "retry", reason: messageOf(error) };
      // Its schedule or timezone no longer parses (a runtime without that zone, a stored value from an older version): it cannot fire.
      await this.#advanceQuietly(cron.cron_id, cron.next_run_ms!, null);
      return { ...base, next_ms: null, result: "refused", reason: `${messageOf(error)} The cron fires no more until its schedule is patched.` };
    }
    const outcome = { cron_id: cron.cron_id, scheduled_ms: fire.scheduled_ms, next_ms: fire.next_ms };
    try {
      const run = await this.#deps.runs.createForCron(cron, fire, { signal: false });
      return { ...outcome, result: "fired", run_id: run.run_id, thread_id: run.thread_id };
    } catch (error) {
      if (error instanceof CronFireTaken) return { ...outcome, result: "taken", reason: error.message };
      if (!isDomainRefusal(error)) return { ...outcome, next_ms: cron.next_run_ms, result: "retry", reason: messageOf(error) };
      await this.#advanceQuietly(cron.cron_id, cron.next_run_ms!, fire.next_ms);
      return { ...outcome, result: "refused", reason: messageOf(error) };
    }
  }

  /** Moves a cron on from `fromMs` (only if still there); a failure leaves it due, to be tried again. */
  async #advanceQuietly(cronId: string, fromMs: number, nextMs: number | null): Promise<void> {
    try {
      await this.#deps.crons.advance(cronId, fromMs, nextMs);
    } catch {
      // The database did not answer: the cron stays due and the next look deals with it.
    }
  }
}

/** Refusals that would refuse this scheduled time again however often it is tried: the time is skipped. */
function isDomainRefusal(error: unknown): boolean {
  return error instanceof BatonError && (error.code === ErrorCode.conflict || error.code === ErrorCode.busy || error.code === ErrorCode.notFound || error.code === ErrorCode.invalid);
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** An end time as the record stores it: ISO in UTC, milliseconds included (validated at the edge). */
function normalisedEndTime(endTime: string | null): string | null {
  if (endTime === null) return null;
  const ms = Date.parse(endTime);
  return Number.isNaN(ms) ? endTime : isoFromMs(ms);
}
