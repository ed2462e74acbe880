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
import { CronFireTaken, fireTime, nextFire, Schedule, type Cron, type CronRunFields, type Crons, type CronSearch, type OnRunCompleted } from "./crons.ts";
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

/** What firing a due cron came to: its run was created, another scheduler had fired that time, or the run was refused (that time skipped). */
export type CronFireOutcome = { cron_id: string; scheduled_ms: number; next_ms: number | null } & (
  | { result: "fired"; run_id: string; thread_id: string }
  | { result: "taken" | "refused"; reason: string }
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
    Schedule.parse(value.schedule, timezone);
    const assistant = await resolveAssistant(this.#deps.assistants, this.#deps.registry.ids, input.assistant_id);
    if (!this.#deps.registry.has(assistant.graph_id)) {
      throw new BatonError(ErrorCode.notFound, `Graph '${assistant.graph_id}' of assistant '${assistant.assistant_id}' is not loaded.`);
    }
    const thread = input.thread_id === null ? null : await this.#deps.threads.get(input.thread_id);
    if (input.thread_id !== null && (thread === null || (restricts(filter) && !matches(thread.metadata, filter)))) throw notFound("Thread", input.thread_id);
    const metadata = value.metadata ?? {};
    const schedule = { schedule: value.schedule, timezone, end_time: value.end_time, enabled: input.enabled };
    const cron = await this.#deps.crons.create({
      cron_id: cronId,
      assistant_id: assistant.assistant_id,
      thread_id: input.thread_id,
      on_run_completed: input.thread_id === null ? (input.on_run_completed ?? "delete") : null,
      ...schedule,
      user_id: value.user_id ?? ownerOf(ctx, metadata, thread),
      payload: value.payload ?? {},
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

  async update(ctx: RequestContext, cronId: string, patch: CronPatchInput): Promise<Cron> {
    const { value, filter } = await this.#deps.authorizer.authorize(ctx, "crons", "update", { cron_id: cronId, payload: patch.payload, schedule: patch.schedule });
    const current = await this.#deps.crons.get(cronId, { access: filter });
    if (current === null) throw notFound("Cron", cronId);
    if (patch.on_run_completed !== undefined && current.thread_id !== null) {
      throw new BatonError(ErrorCode.invalid, "on_run_completed applies to stateless crons only: this cron runs on thread '" + current.thread_id + "'. Leave it out.");
    }
    const next = {
      schedule: value.schedule ?? current.schedule,
      timezone: patch.timezone === undefined ? current.timezone : patch.timezone,
      end_time: patch.end_time === undefined ? current.end_time : patch.end_time,
      enabled: patch.enabled ?? current.enabled,
    };
    Schedule.parse(next.schedule, next.timezone);
    const updated = await this.#deps.crons.patch(
      cronId,
      {
        ...next,
        on_run_completed: patch.on_run_completed,
        payload: value.payload === undefined ? undefined : { ...current.payload, ...value.payload },
        metadata: patch.metadata === undefined ? undefined : { ...current.metadata, ...patch.metadata },
        next_run_ms: nextFire(next, this.#deps.clock.nowMs()),
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

  /** Fires every cron due at `nowMs` (each scheduled time once: docs/crons.md); says what became of each. */
  async fireDue(nowMs: number): Promise<CronFireOutcome[]> {
    const outcomes: CronFireOutcome[] = [];
    for (;;) {
      const due = await this.#deps.crons.due(nowMs, FIRE_BATCH);
      for (const cron of due) {
        const outcome = await this.#fire(cron, nowMs);
        if (outcome !== null) outcomes.push(outcome);
      }
      if (due.length < FIRE_BATCH) return outcomes;
    }
  }

  /**
   * Fires one due cron for its scheduled time (the latest one not after
   * now: older missed times are skipped). A time another scheduler fired
   * first is skipped ("taken"). A run that cannot be created (its thread
   * is busy under `reject`, the queue is full, the assistant is gone)
   * skips that time ("refused"); a database that does not answer leaves
   * the cron due, to be tried again (thrown).
   */
  async #fire(cron: Cron, nowMs: number): Promise<CronFireOutcome | null> {
    const scheduled = fireTime(cron, nowMs);
    if (scheduled === null) return null;
    const fire = { cron_id: cron.cron_id, scheduled_ms: scheduled, next_ms: nextFire(cron, Math.max(scheduled, nowMs)) };
    const base = { cron_id: cron.cron_id, scheduled_ms: scheduled, next_ms: fire.next_ms };
    try {
      const run = await this.#deps.runs.createForCron(cron, fire);
      return { ...base, result: "fired", run_id: run.run_id, thread_id: run.thread_id };
    } catch (error) {
      if (error instanceof CronFireTaken) return { ...base, result: "taken", reason: error.message };
      if (error instanceof BatonError && error.code === ErrorCode.unavailable) throw error;
      await this.#deps.crons.advance(cron.cron_id, cron.next_run_ms!, fire.next_ms);
      return { ...base, result: "refused", reason: error instanceof Error ? error.message : String(error) };
    }
  }
}
