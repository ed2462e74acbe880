/**
 * Ports: what the core and the drivers need from a backend, spoken in domain
 * verbs. Every state change of a run is one atomic operation of the backend,
 * guarded by the lease owner and attempt where a worker makes it.
 */
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import type { BaseStore } from "@langchain/langgraph";
import type { QueueLimits } from "./admission.ts";
import type {
  Assistant,
  CancelAction,
  IfExists,
  JsonObject,
  Metadata,
  MultitaskStrategy,
  Run,
  RunEvent,
  RunStatus,
  RunnableConfigRecord,
  RunKwargs,
  StoreItem,
  Thread,
  ThreadEvent,
  ThreadStatus,
} from "./types.ts";
import type { Filter } from "./filter.ts";
import type { CronFire, Crons } from "./crons.ts";
import type { ThreadTtl, TtlSweep } from "./thread-ttl.ts";
import type { Logger } from "./logger.ts";

export interface Page {
  limit: number;
  offset: number;
}

/**
 * An access filter (src/core/filter.ts) scoping a read or write to the
 * records an authorization handler allows; absent or empty: no restriction.
 * A record outside it is treated as missing (get: null, patch: not found,
 * delete: false). Never built from a client's input.
 */
export interface Scoped {
  access?: Filter | undefined;
}

export interface AssistantSearch extends Page, Scoped {
  graph_id?: string | undefined;
  name?: string | undefined;
  metadata?: Metadata | undefined;
  sort_by?: "assistant_id" | "graph_id" | "name" | "created_at" | "updated_at" | undefined;
  sort_order?: "asc" | "desc" | undefined;
}

export interface NewAssistant {
  assistant_id: string;
  graph_id: string;
  config: RunnableConfigRecord;
  context: JsonObject;
  metadata: Metadata;
  name: string;
  description: string | null;
  if_exists: IfExists;
}

export interface AssistantPatch {
  graph_id?: string | undefined;
  config?: RunnableConfigRecord | undefined;
  context?: JsonObject | undefined;
  metadata?: Metadata | undefined;
  name?: string | undefined;
  description?: string | null | undefined;
}

export interface Assistants {
  /** Creates, or returns the existing one when `if_exists` is `do_nothing`. */
  create(input: NewAssistant): Promise<Assistant>;
  /** Creates the system assistant of a graph unless it exists. */
  ensure(input: Omit<NewAssistant, "if_exists">): Promise<void>;
  get(assistantId: string, scope?: Scoped): Promise<Assistant | null>;
  /** Writes a new version and makes it the latest. */
  patch(assistantId: string, patch: AssistantPatch, scope?: Scoped): Promise<Assistant>;
  /**
   * Deletes the assistant and its versions; with `deleteThreads`, also every
   * thread whose metadata names it, in the same transaction (refused with a
   * conflict if one of those threads has a running run).
   */
  delete(assistantId: string, options?: { deleteThreads?: boolean } & Scoped): Promise<boolean>;
  search(query: AssistantSearch): Promise<Assistant[]>;
  count(query: Omit<AssistantSearch, "limit" | "offset" | "sort_by" | "sort_order">): Promise<number>;
  versions(assistantId: string, query: Page & Scoped & { metadata?: Metadata | undefined }): Promise<Assistant[]>;
  setLatest(assistantId: string, version: number, scope?: Scoped): Promise<Assistant>;
}

export interface ThreadSearch extends Page, Scoped {
  ids?: string[] | undefined;
  metadata?: Metadata | undefined;
  values?: JsonObject | undefined;
  status?: ThreadStatus | undefined;
  sort_by?: "thread_id" | "status" | "created_at" | "updated_at" | undefined;
  sort_order?: "asc" | "desc" | undefined;
}

export interface Threads {
  /** Creates the thread, with `ttl` when given (docs/threads.md; `do_nothing` leaves an existing thread's TTL alone). */
  create(input: { thread_id: string; metadata: Metadata; if_exists: IfExists; ttl?: ThreadTtl | null | undefined }): Promise<Thread>;
  /** The thread; its `ttl` is set (null when it has none). */
  get(threadId: string, scope?: Scoped): Promise<Thread | null>;
  /** Merges `metadata` into the thread's; with `ttl`, replaces its TTL (counted from now, since the patch is activity). */
  patch(threadId: string, metadata: Metadata, scope?: Scoped, ttl?: ThreadTtl): Promise<Thread>;
  /** Deletes the thread, its runs and its checkpoints. Refused while a run is running. */
  delete(threadId: string, scope?: Scoped): Promise<boolean>;
  search(query: ThreadSearch): Promise<Thread[]>;
  count(query: Omit<ThreadSearch, "limit" | "offset" | "sort_by" | "sort_order" | "ids">): Promise<number>;
  /**
   * `delete`: removes threads (with runs and checkpoints); `keep_latest`: keeps
   * each thread and its latest checkpoint per namespace, dropping older ones.
   * Threads with a running run are skipped. Returns how many were pruned,
   * and (`delete`) the pending runs deleted with them, read in the same
   * transaction, so the caller ends exactly their streams.
   */
  prune(threadIds: string[], strategy: "delete" | "keep_latest"): Promise<{ pruned: number; pending_runs: string[] }>;
  /**
   * One sweep of expired threads (docs/threads.md): takes at most `limit`
   * threads whose TTL expired by `nowMs` and that have no pending or running
   * run nor enabled cron, and prunes each by its own strategy with `prune`'s
   * statements. Safe with any number of concurrent sweepers: a thread is
   * taken by one of them, under the lock run creation and claims take, so
   * it is never deleted twice nor while a run starts on it. `nowMs`
   * undefined: the database server's time where several processes share
   * the database (so a process whose clock runs ahead deletes nothing
   * early), this process's clock where it owns the database.
   */
  sweepExpired(nowMs: number | undefined, limit: number): Promise<TtlSweep>;
  /** Copies the thread and its checkpoints under a new id. */
  copy(threadId: string, newThreadId: string): Promise<Thread>;
  /** Records the state after a state update made outside a run. */
  setState(threadId: string, state: { values: JsonObject | null; interrupts: Record<string, unknown[]>; status: ThreadStatus; graphId?: string }): Promise<void>;
}

export interface NewRun {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  graph_id: string;
  metadata: Metadata;
  /** The metadata of the thread when the run creates it (`if_not_exists: create`, or a temporary thread). */
  thread_metadata: Metadata;
  /** The user the run counts against (per-user caps, fair selection), decided by RunService; null: nobody. */
  owner: string | null;
  /** Claim order across threads, higher first (never within a thread), from MIN_PRIORITY to MAX_PRIORITY (src/core/admission.ts). */
  priority: number;
  /** A key that identifies a retried request (stored; used once idempotency lands); null: none. */
  dedupe_key: string | null;
  multitask_strategy: MultitaskStrategy;
  kwargs: RunKwargs;
  available_at_ms: number;
  /** Create the thread when it does not exist ("create"), or fail ("reject"). */
  if_not_exists: "create" | "reject";
  /** The TTL of the thread when the run creates it (langgraph.json's default, docs/threads.md); absent or null: none. An existing thread's TTL is left alone. */
  thread_ttl?: ThreadTtl | null | undefined;
  /**
   * A cron's scheduled time this run fires (docs/crons.md): its fire key is
   * claimed and the cron moved to its next time in the same transaction as
   * the insert, or `CronFireTaken` is thrown and nothing is created.
   */
  cron_fire?: CronFire | undefined;
}

export interface RunCreated {
  run: Run;
  /** Runs the admission decided to stop, so the caller can signal them. */
  cancelled: (CancelledRun & { action: CancelAction })[];
}

/**
 * A run whose stream the caller ends (`streamEnding`). `thread_log`: the
 * thread whose log the run's events go to (`threadLogOf`: its thread, unless
 * temporary), so a run that ends here gets its end on the thread stream too.
 * `resumable`: its events are kept `eventRetentionMs` after the end, so a
 * client that reconnects with Last-Event-ID still reads how it ended.
 */
export interface EndedStream {
  run_id: string;
  thread_log?: string | undefined;
  resumable?: boolean | undefined;
}

/** A run a cancel reached. */
export interface CancelledRun extends EndedStream {
  was_running: boolean;
}

/** A run a sweep ended after its last attempt or a cancel its worker never finished: how it ended, for its end event. */
export interface AbandonedRun extends EndedStream {
  status: "error" | "interrupted" | "rolled_back";
  output: unknown;
}

/** A run the queue deadline ended (`maxQueueWaitMs`), with the reason its joiners are told. */
export interface OverdueRun extends EndedStream {
  failure: { error: string; message: string };
}

/** Proof that a worker still owns a run. */
export interface Fence {
  owner: string;
  attempt: number;
}

export interface RunOutcome {
  status: Exclude<RunStatus, "pending" | "running">;
  error: string | null;
  /** Thread fields computed from the graph's state after the run. */
  thread: { values: JsonObject | null; interrupts: Record<string, unknown[]>; status: ThreadStatus };
  /** Erase the run and the checkpoints it wrote (rollback). */
  erase: boolean;
  /** What `wait` and `join` answer: the final values, or `{__error__}`. */
  output: unknown;
}

/** When a finished attempt ran, on the executing process's clock (epoch ms): what its webhook reports. */
export interface AttemptTimes {
  startedAtMs: number;
  endedAtMs: number;
}

export interface ClaimPolicy {
  /** Running runs one named user may have at once; the anonymous user (owner null) is bounded only by the workers (docs/scheduling.md). */
  maxRunningPerUser: number;
}

export type FinishResult = "recorded" | "erased" | "fenced";

export interface RunQueue {
  /**
   * Inserts the run and applies its multitask strategy in one transaction
   * (C2); refuses it (429) when `limits` say the queue is full (C6).
   */
  create(input: NewRun, limits?: QueueLimits): Promise<RunCreated>;
  get(runId: string, threadId?: string): Promise<Run | null>;
  list(threadId: string, query: Page & { status?: RunStatus | undefined }): Promise<Run[]>;
  /** Deletes a final run. Refused (conflict) while pending or running. */
  delete(threadId: string, runId: string): Promise<boolean>;
  /**
   * Stops runs: pending ones end at once (interrupt: status `interrupted`;
   * rollback: deleted), running ones are flagged for their worker.
   */
  cancel(runIds: string[], action: CancelAction): Promise<CancelledRun[]>;
  /**
   * Takes the next due run whose thread has no running run (C1), only the
   * oldest pending run of each thread (FIFO within a thread), skipping named
   * users at `maxRunningPerUser`; among those, the highest priority first,
   * then the user (the anonymous one counted as one) with fewer running
   * runs, then the oldest (C6, docs/scheduling.md).
   */
  claim(worker: string, leaseMs: number, policy?: ClaimPolicy): Promise<Run | null>;
  /** Renews the leases of the given runs still held by `owner`; returns those held. */
  extendLeases(owner: string, runIds: string[], leaseMs: number): Promise<string[]>;
  /**
   * Ends a run and updates its thread, only if the fence still holds
   * ("fenced" otherwise). A run flagged for rollback is erased whatever its
   * outcome says ("erased"): a graph that finished just as the rollback
   * arrived must not leave its checkpoints behind (C2).
   */
  finish(runId: string, fence: Fence, outcome: RunOutcome): Promise<FinishResult>;
  /**
   * Ends as `timeout` every run still pending `maxWaitMs` after it became
   * due (`available_at_ms`), each in one atomic step under its thread's
   * lock, its reason in `error` and its answer (`queueTimeoutFailure`).
   * Returns those it ended, so the caller ends their streams.
   */
  expireOverdue(maxWaitMs: number): Promise<OverdueRun[]>;
  /** Puts a run back to pending (graceful shutdown hand-back). */
  release(runId: string, fence: Fence): Promise<boolean>;
  /**
   * Sets when each of these runs becomes due, in one step, for those still
   * pending: a batch's runs are created held (due later) and released
   * together once all of them exist (`RunService.createBatch`).
   */
  reschedule(runs: { run_id: string; available_at_ms: number }[]): Promise<void>;
  /**
   * Requeues running runs whose lease expired, or ends them as errors after
   * `maxAttempts`; only those leased to `owner` when given.
   */
  sweep(maxAttempts: number, owner?: string): Promise<{ requeued: string[]; failed: AbandonedRun[] }>;
  /** The cancel action recorded for a run, if any (the durable side of cancels). */
  cancelAction(runId: string): Promise<CancelAction | null>;
  /** Ids of pending or running runs of a thread, oldest first. */
  inflight(threadId: string): Promise<Run[]>;
  /**
   * Takes the thread for a write made outside a run (a state update): granted
   * only while no run of the thread is running (otherwise it names that run),
   * and no run is claimed on the thread until `unlockThread` or `ttlMs`.
   */
  /**
   * Optional: renews `owner`'s leases off the event loop (a thread with its
   * own connection), for backends shared by several processes, where a
   * blocked loop would otherwise let another process re-dispatch a live run.
   */
  keepLeases?(options: { owner: string; leaseMs: number; renewMs: number; onError: (message: string) => void }): LeaseKeeper;
  lockThread(threadId: string, owner: string, ttlMs: number): Promise<{ locked: true } | { locked: false; busyWith: string }>;
  unlockThread(threadId: string, owner: string): Promise<void>;
  /**
   * The whole queue at a glance, for metrics (docs/metrics.md): one grouped
   * read of the pending and running runs, whichever process created or
   * executes them. `nowMs` decides which pending runs are due.
   */
  stats(nowMs: number): Promise<QueueStats>;
}

/** What `RunQueue.stats` reads: bounded by the graphs and by the distinct per-user counts, never one row per run or user. */
export interface QueueStats {
  /** Per graph and status: the runs, and for pending ones the `available_at_ms` of the oldest due run (null: none due). */
  graphs: { graph_id: string; status: "pending" | "running"; runs: number; oldest_due_ms: number | null }[];
  /** How many users (the anonymous user counted as one) have exactly `runs` runs in `status`. */
  users: { status: "pending" | "running"; runs: number; users: number }[];
}

/**
 * Renews every lease its owner holds, whatever the event loop does (so a run
 * claimed while the loop was blocked is covered before the loop sees it),
 * except runs the owner has let go of (`drop`: finished, handed back, or
 * crashed in a way that must let the lease expire).
 */
export interface LeaseKeeper {
  drop(runId: string): void;
  close(): Promise<void>;
}

/**
 * Store items: an access filter is matched against the item's document, its
 * value with `namespace` (the labels) and `key` set to the item's own, as the
 * official server's store routes match an `Auth` handler's filter.
 */
export interface StoreSearch extends Scoped {
  namespace_prefix: string[];
  filter?: Record<string, unknown> | undefined;
  limit: number;
  offset: number;
  /** Without `vector`: a case-insensitive text match on the value (no index configured). */
  query?: string | undefined;
  /**
   * The query's embedding: items are ranked by cosine similarity to it (an
   * item's best-matching text); items without embeddings are left out;
   * `query` is then not matched as text.
   */
  vector?: number[] | undefined;
  /** With `vector`: rank at most this many items (those with embeddings the conditions select); more is a 422. Default DEFAULT_SEARCH_MAX_CANDIDATES. */
  maxCandidates?: number | undefined;
  /** Push the TTL of the items found forward (those that have one). */
  refreshTtl?: boolean | undefined;
}

/** One embedding of an item: `field` names the indexed path and the text's position in it. */
export interface StoreVector {
  field: string;
  vector: number[];
}

export interface StorePutOptions {
  /** Minutes the item lives after this write (and after each refreshing read); null or absent: forever. */
  ttlMinutes?: number | null | undefined;
  /** The item's embeddings, replacing those it had; absent or empty: not indexed. */
  vectors?: StoreVector[] | undefined;
}

export interface StoreRead extends Scoped {
  /** Push the item's TTL forward (when it has one). */
  refreshTtl?: boolean | undefined;
}

/** A store item found by a search; `score` is set by a search with a query vector (null: the item has no embedding). */
export type ScoredStoreItem = StoreItem & { score?: number | null };

/** Store items. An expired item (its TTL passed) is invisible to every read, and gone once swept. */
export interface StoreItems {
  put(namespace: string[], key: string, value: JsonObject, options?: StorePutOptions): Promise<void>;
  get(namespace: string[], key: string, scope?: StoreRead): Promise<StoreItem | null>;
  /** Deletes the item unless the scope excludes it. */
  delete(namespace: string[], key: string, scope?: Scoped): Promise<void>;
  search(query: StoreSearch): Promise<ScoredStoreItem[]>;
  listNamespaces(query: NamespaceQuery): Promise<string[][]>;
  /** Deletes up to `limit` expired items; returns how many (safe to run in several processes at once). */
  sweepExpired(limit: number): Promise<number>;
  /** The length of the stored embeddings (null when none is stored), to check against `store.index.dims` at start. */
  vectorDims(): Promise<number | null>;
  /** Postgres only: whether the pgvector extension is installed, available or absent (reported at start). */
  vectorExtension?(): Promise<"installed" | "available" | "absent">;
  /**
   * Postgres only: chooses the semantic search for `dims` as `mode` asks
   * (pgvector's index, set up here, or the exact scan) and says which and
   * why (docs/store.md); rejects when `mode` is "pgvector" and it cannot be
   * had. Without it (SQLite), the search is the exact scan.
   */
  prepareVectorSearch?(dims: number, mode: "auto" | "exact" | "pgvector", logger: Logger): Promise<{ search: "pgvector" | "exact"; reason: string | null }>;
}

/** Which store namespaces to list ("*" in a prefix or suffix matches any label). */
export interface NamespaceQuery {
  prefix?: string[] | undefined;
  suffix?: string[] | undefined;
  max_depth?: number | undefined;
  limit: number;
  offset: number;
}

/**
 * Idempotency keys: which request first used a key, and what it created.
 * A key is scoped (the caller and the kind of record), so two users' keys
 * never meet. An expired key is as good as absent.
 */
export interface IdempotencyRecord {
  /** Digest of the first request's body (and target): a retry must match it. */
  fingerprint: string;
  /** The id of what the first request creates (chosen before it starts). */
  resource_id: string;
  /** The created record as answered, once the first request finished; null while it is in flight. */
  response: JsonObject | null;
  /** When the request holding the key claimed it (ms): a takeover's claim is later than the one it replaced. */
  claimed_at_ms: number;
}

/** One claim of a key: what it creates and when it was taken (the claim's identity). */
export type IdempotencyClaim = Pick<IdempotencyRecord, "resource_id" | "claimed_at_ms">;

export interface IdempotencyKeys {
  /**
   * Takes the key for a request atomically: "claimed" (at `nowMs`) when no
   * live record holds it (an expired one is replaced), else the record that
   * does.
   */
  claim(scope: string, key: string, record: { fingerprint: string; resource_id: string }, nowMs: number, ttlMs: number): Promise<{ claimed: true } | { claimed: false; record: IdempotencyRecord }>;
  /** The request finished: what it answered (only while the key is still its claim). */
  complete(scope: string, key: string, claim: IdempotencyClaim, response: JsonObject): Promise<void>;
  /** The request failed: the key is free again (only while it is still its claim, unanswered). */
  release(scope: string, key: string, claim: IdempotencyClaim): Promise<void>;
  /**
   * A claim presumed dead (its request never answered) passes to a retry,
   * which holds it from `nowMs` on, same resource id; false when the claim
   * was answered, released or taken over meanwhile.
   */
  takeOver(scope: string, key: string, claim: IdempotencyClaim, nowMs: number): Promise<boolean>;
  /** The live record of a key, if any. */
  get(scope: string, key: string, nowMs: number): Promise<IdempotencyRecord | null>;
  /** Deletes expired keys; returns how many. */
  purge(nowMs: number): Promise<number>;
}

/** What a backend hands the composition root. */
export interface Backend {
  readonly name: string;
  readonly description: string;
  assistants: Assistants;
  threads: Threads;
  runs: RunQueue;
  items: StoreItems;
  idempotency: IdempotencyKeys;
  crons: Crons;
  /** The checkpointer attached to every run's graph instance. */
  checkpointer: BaseCheckpointSaver;
  /** The LangGraph store attached to every run's graph instance. */
  store: BaseStore;
  /**
   * The database's schema version and the one this Baton ships, read with
   * one cheap statement (a readiness probe's database check); rejects when
   * the database does not answer.
   */
  schemaStatus(): Promise<SchemaStatus>;
  /** The connection pool now (Postgres; absent where there is none), read by metrics. */
  poolStats?(): PoolStats;
  close(): Promise<void>;
}

/** A connection pool's state: its cap, the connections open, those idle, and the requests waiting for one. */
export interface PoolStats {
  max: number;
  total: number;
  idle: number;
  waiting: number;
}

/** What `Backend.schemaStatus` reads: equal versions mean the schema is the one this code expects. */
export interface SchemaStatus {
  version: number;
  expected: number;
}

/** Run events, cancels and wake-ups. */
export interface EventBus {
  /**
   * Appends an event to a run's stream (in order, fire and forget). With
   * `attempt` (what a worker executing the run passes), the event is
   * dropped once a later attempt of the run has published: an attempt whose
   * lease another worker took never interleaves its events with the new
   * attempt's (C8). With `threadId` (a run on a thread that is not
   * temporary), the event is also appended to that thread's log, in the same
   * step and under the same rule, for thread streams.
   */
  publish(runId: string, event: string, data: unknown, attempt?: number, threadId?: string): void;
  /**
   * Marks a run's stream as ended; subscribers finish after the last event.
   * Its events stay joinable for `retainMs` (resumable streams); with 0 they
   * are freed once the current subscribers have read them, and later joiners
   * get an empty, ended stream.
   */
  end(runId: string, retainMs: number): void;
  /**
   * Every event of the run after `afterId` (all when undefined), then the ones
   * still to come, until the stream ends or the signal aborts.
   */
  subscribe(runId: string, afterId: string | undefined, signal: AbortSignal): AsyncIterable<RunEvent>;
  /**
   * The thread's log (the events of its runs, each once, in order) after
   * `afterId`: undefined starts at the current end (what comes next), "-"
   * at the oldest event kept. It never ends by itself: it stops when the
   * signal aborts or the bus closes. The log keeps a bounded number of
   * events for a bounded time after the last one; a reader starting before
   * the oldest kept gets an `error` event `StreamTruncated` first.
   */
  subscribeThread(threadId: string, afterId: string | undefined, signal: AbortSignal): AsyncIterable<ThreadEvent>;
  /** The id of the newest entry of a thread's log (undefined: none kept), so a reader of its past can stop there. */
  threadLogHead(threadId: string): Promise<string | undefined>;
  /** Whether events of this run are known to the bus (live or retained). */
  has(runId: string): Promise<boolean>;
  /**
   * Whether every event published now reaches its subscribers: always for
   * the in-process bus; for Redis, while both connections are up and
   * subscribed and have been for a few seconds (an outage shorter than a
   * waiter's poll still shows). While healthy, waits for a run's end trust
   * the bus and read the durable record only rarely; while not, every
   * second. A bus without it is taken as not healthy.
   */
  healthy?(): boolean;
  /** Tells whoever executes the run to stop it. */
  signalCancel(runId: string, action: CancelAction): void;
  onCancel(listener: (runId: string, action: CancelAction) => void): () => void;
  /** Wakes idle workers when a run was created or a thread freed. */
  signalWork(): void;
  onWork(listener: () => void): () => void;
  close(): Promise<void>;
}
