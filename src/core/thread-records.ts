/**
 * Thread records as the API offers them (create, get, patch, delete,
 * search, count, copy, prune): every action asks the Authorizer first
 * (`threads:<action>`, with the value the official handlers see), acts on
 * the value it hands back, and passes its access filter to the port, where
 * it becomes part of the query: a thread outside it is not found on a read,
 * update, delete or copy, and left out of a search or count.
 *
 * Thread state (state, history, updates) is ThreadService's, which asks
 * `threads:read|update` the same way.
 */
import { randomUUID } from "node:crypto";
import { restricts, type Authorizer } from "./authorizer.ts";
import type { RequestContext } from "./context.ts";
import { conflict, notFound } from "./errors.ts";
import { matches } from "./filter.ts";
import type { Idempotency } from "./idempotency.ts";
import type { EventBus, RunQueue, Threads, ThreadSearch } from "./ports.ts";
import type { SuperstepUpdate, ThreadService } from "./threads.ts";
import type { ThreadTtl } from "./thread-ttl.ts";
import type { IfExists, Metadata, Thread } from "./types.ts";

export interface ThreadRecordServiceDeps {
  threads: Threads;
  queue: RunQueue;
  bus: EventBus;
  /** Creates a thread with its first supersteps, all or nothing. */
  threadService: ThreadService;
  authorizer: Authorizer;
  /** Idempotency-Key handling for thread creation. */
  idempotency: Idempotency;
  /** The TTL a thread created without one gets (langgraph.json `checkpointer.ttl`); absent or null: none. */
  defaultTtl?: ThreadTtl | null | undefined;
}

export interface NewThread {
  /** The client's id for the thread; undefined: a new one. */
  thread_id: string | undefined;
  metadata: Metadata;
  if_exists: IfExists;
  supersteps?: { updates: SuperstepUpdate[] }[] | undefined;
  /** The client's TTL; undefined: the default, if any. */
  ttl?: ThreadTtl | undefined;
}

type ThreadCountQuery = Omit<ThreadSearch, "limit" | "offset" | "sort_by" | "sort_order" | "ids">;

export class ThreadRecordService {
  readonly #threads: Threads;
  readonly #queue: RunQueue;
  readonly #bus: EventBus;
  readonly #threadService: ThreadService;
  readonly #authorizer: Authorizer;
  readonly #idempotency: Idempotency;
  readonly #defaultTtl: ThreadTtl | null;

  constructor(deps: ThreadRecordServiceDeps) {
    this.#threads = deps.threads;
    this.#queue = deps.queue;
    this.#bus = deps.bus;
    this.#threadService = deps.threadService;
    this.#authorizer = deps.authorizer;
    this.#idempotency = deps.idempotency;
    this.#defaultTtl = deps.defaultTtl ?? null;
  }

  /**
   * Creates a thread (with supersteps: all or nothing), or with `if_exists:
   * do_nothing` answers the existing one; with an Idempotency-Key, once (a
   * retry answers the thread the first request created).
   */
  async create(ctx: RequestContext, input: NewThread): Promise<Thread> {
    return this.#idempotency.once(
      ctx,
      "thread",
      input,
      (id) => this.#create(ctx, { ...input, thread_id: input.thread_id ?? id }),
      // The key's scope is the caller's; a thread since deleted is answered as it was created.
      async (record) => ((await this.#threads.get(record.resource_id)) === null ? (record.response as unknown as Thread) : this.get(ctx, record.resource_id)),
      // A request presumed dead may have created its thread before it died. Only a thread with the key's own id
      // is known to be its: one under an id the client gave may be anyone's (a retry then meets if_exists).
      async (id) => (input.thread_id !== undefined || (await this.#threads.get(id)) === null ? null : this.get(ctx, id)),
    );
  }

  async #create(ctx: RequestContext, input: NewThread & { thread_id: string }): Promise<Thread> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "threads", "create", {
      thread_id: input.thread_id,
      metadata: input.metadata,
      if_exists: input.if_exists,
      // The official ThreadsCreate value's shape: {strategy, ttl} in minutes; absent when the client gave none.
      ...(input.ttl === undefined ? {} : { ttl: { strategy: input.ttl.strategy, ttl: input.ttl.minutes } }),
    });
    if (restricts(filter)) {
      // An existing thread outside the caller's filter is neither shown nor replaced (as on the official server).
      const existing = await this.#threads.get(value.thread_id);
      if (existing !== null && !matches(existing.metadata, filter)) throw conflict(`Thread '${value.thread_id}' already exists.`);
    }
    const thread = await this.#threadService.create({
      thread_id: value.thread_id,
      metadata: value.metadata,
      if_exists: value.if_exists,
      supersteps: input.supersteps,
      ttl: input.ttl ?? this.#defaultTtl,
    });
    // Created by someone else between the check and the create (do_nothing answers it): still not the caller's to see.
    if (restricts(filter) && matches(value.metadata, filter) && !matches(thread.metadata, filter)) throw conflict(`Thread '${value.thread_id}' already exists.`);
    return thread;
  }

  async get(ctx: RequestContext, threadId: string): Promise<Thread> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "threads", "read", { thread_id: threadId });
    const thread = await this.#threads.get(value.thread_id, { access: filter });
    if (thread === null) throw notFound("Thread", value.thread_id);
    return thread;
  }

  /** Merges `metadata` into the thread's; with `ttl`, replaces its TTL (its expiry counted from now). */
  async patch(ctx: RequestContext, threadId: string, metadata: Metadata, ttl?: ThreadTtl): Promise<Thread> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "threads", "update", { thread_id: threadId, metadata });
    return this.#threads.patch(value.thread_id, value.metadata, { access: filter }, ttl);
  }

  /** Deletes the thread; its pending runs go with it, and their streams are ended so a waiting client is answered at once. */
  async delete(ctx: RequestContext, threadId: string): Promise<void> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "threads", "delete", { thread_id: threadId });
    const id = value.thread_id;
    const pending = await this.#queue.list(id, { status: "pending", limit: 10_000, offset: 0 });
    if (!(await this.#threads.delete(id, { access: filter }))) throw notFound("Thread", id);
    for (const run of pending) this.#bus.end(run.run_id, 0);
  }

  async search(ctx: RequestContext, query: ThreadSearch): Promise<Thread[]> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "threads", "search", {
      metadata: query.metadata,
      ids: query.ids,
      status: query.status,
      values: query.values,
      limit: query.limit,
      offset: query.offset,
    });
    return this.#threads.search({ ...query, ...value, access: filter });
  }

  async count(ctx: RequestContext, query: ThreadCountQuery): Promise<number> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "threads", "search", {
      metadata: query.metadata,
      values: query.values,
      status: query.status,
      limit: 0,
      offset: 0,
    });
    return this.#threads.count({ ...query, metadata: value.metadata, values: value.values, status: value.status, access: filter });
  }

  /**
   * Prunes threads (`delete`: with their runs and checkpoints;
   * `keep_latest`: all but each namespace's latest checkpoint). Each thread
   * is asked for as its own action (`threads:delete`, or `threads:update`
   * for `keep_latest`); threads outside a filter are skipped, as are threads
   * with a running run. Answers how many were pruned.
   */
  async prune(ctx: RequestContext, threadIds: string[], strategy: "delete" | "keep_latest"): Promise<number> {
    const allowed: string[] = [];
    for (const threadId of new Set(threadIds)) {
      const { value, filter } = await this.#authorizer.authorize(ctx, "threads", strategy === "delete" ? "delete" : "update", { thread_id: threadId });
      if (!restricts(filter) || (await this.#threads.get(value.thread_id, { access: filter })) !== null) allowed.push(value.thread_id);
    }
    // Deleted threads take their pending runs along (read in the prune's own transaction): their streams are ended, as DELETE /threads/{id} does.
    const { pruned, pending_runs } = await this.#threads.prune(allowed, strategy);
    for (const runId of pending_runs) this.#bus.end(runId, 0);
    return pruned;
  }

  /**
   * Copies the thread and its checkpoints under a new id: reading it takes
   * `threads:read` (a thread outside the filter is not found), and the copy
   * `threads:create` (as on the official server, which may refuse it).
   */
  async copy(ctx: RequestContext, threadId: string): Promise<Thread> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "threads", "read", { thread_id: threadId });
    const source = await this.#threads.get(value.thread_id, { access: filter });
    if (source === null) throw notFound("Thread", value.thread_id);
    const newId = randomUUID();
    await this.#authorizer.authorize(ctx, "threads", "create", { thread_id: newId, metadata: { ...source.metadata } });
    return this.#threads.copy(source.thread_id, newId);
  }
}
