/**
 * Thread state: read, history and updates go through a graph instance of the
 * thread's graph with the backend's checkpointer attached.
 *
 * A request that names a checkpoint (by id or namespace) that the thread does
 * not have is refused (404), never answered from an empty state: LangGraph
 * treats an unknown checkpoint as a fresh start, which silently replaces the
 * conversation. A state update is first applied to a dry-run saver (reads
 * from the real one, keeps its writes in memory), so an update LangGraph
 * refuses halfway writes nothing.
 *
 * Reading a thread's state or history asks the Authorizer for
 * `threads:read`, updating it for `threads:update` (with `{thread_id}`, as
 * the official handlers see it); a thread outside the returned filter is
 * not found (404).
 */
import { randomUUID } from "node:crypto";
import type { RunnableConfig } from "@langchain/core/runnables";
import { Command, InMemoryStore, MemorySaver, type BaseStore } from "@langchain/langgraph";
import {
  BaseCheckpointSaver,
  type ChannelVersions,
  type Checkpoint,
  type CheckpointListOptions,
  type CheckpointMetadata,
  type CheckpointTuple,
  type PendingWrite,
} from "@langchain/langgraph-checkpoint";
import { systemAssistantId } from "./assistants.ts";
import type { Authorizer } from "./authorizer.ts";
import type { RequestContext } from "./context.ts";
import { BatonError, ErrorCode, coerceError, invalid, notFound } from "./errors.ts";
import { CONFIGURABLE_METADATA_KEY } from "./executor.ts";
import type { GraphInstance, GraphRegistry } from "./graphs.ts";
import type { Assistants, EventBus, RunQueue, Threads } from "./ports.ts";
import { emptyThreadState, interruptsOf, referenceKeys, stateValues, toThreadState, type Snapshot } from "./state.ts";
import type { IfExists, Metadata, Thread } from "./types.ts";
import type { ThreadTtl } from "./thread-ttl.ts";

/** Longest a state update may hold its thread (a crashed update's lock expires). */
const STATE_UPDATE_LOCK_MS = 30_000;

/** A checkpoint as a client names it; a subgraph's carries its namespace (and no id when it is the latest). */
export interface CheckpointRef {
  checkpoint_id?: string | null | undefined;
  checkpoint_ns?: string | null | undefined;
  checkpoint_map?: unknown;
}

/** One update of a superstep, as `POST /threads` takes it. */
export interface SuperstepUpdate {
  values?: unknown;
  as_node: string;
  command?: unknown;
}

/** Names LangGraph's updateState takes besides the graph's nodes. */
const SPECIAL_NODES = ["__input__", "__copy__", "__end__"];

/** A graph instance that can apply several supersteps (LangGraph's bulkUpdateState). */
type Updatable = GraphInstance & {
  bulkUpdateState(config: RunnableConfig, supersteps: { updates: { values: unknown; asNode: string }[] }[]): Promise<RunnableConfig>;
};

const isPlainObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
const kindOf = (value: unknown): string => (Array.isArray(value) ? "an array" : value === null ? "null" : `a ${typeof value}`);

/** The id and namespace a reference names, blanks as absent. */
function named(ref: CheckpointRef | undefined): { id: string | undefined; ns: string } {
  return { id: ref?.checkpoint_id || undefined, ns: ref?.checkpoint_ns || "" };
}

/**
 * A saver for trying an update before making it: reads fall through to the
 * real saver, writes stay in memory and are dropped with it.
 */
class DryRunSaver extends BaseCheckpointSaver {
  readonly #memory: MemorySaver;
  /** What the real saver threw, if it did: the store's failure, not the update's. */
  storeFailure: unknown = undefined;
  constructor(private readonly real: BaseCheckpointSaver) {
    super(real.serde);
    this.#memory = new MemorySaver(real.serde);
  }
  override async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    return (await this.#memory.getTuple(config)) ?? (await this.#read(() => this.real.getTuple(config)));
  }
  override async *list(config: RunnableConfig, options?: CheckpointListOptions): AsyncGenerator<CheckpointTuple> {
    yield* this.#memory.list(config, options);
    const real = this.real.list(config, options);
    for (;;) {
      const next = await this.#read(() => real.next());
      if (next.done === true) return;
      yield next.value;
    }
  }
  async #read<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      this.storeFailure ??= error;
      throw error;
    }
  }
  override put(config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, _versions: ChannelVersions): Promise<RunnableConfig> {
    return this.#memory.put(config, checkpoint, metadata);
  }
  override putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string, taskPath?: string): Promise<void> {
    return this.#memory.putWrites(config, writes, taskId, taskPath);
  }
  override async deleteThread(): Promise<void> {}
  override getNextVersion(current: number | undefined): number {
    return this.real.getNextVersion(current);
  }
}

/**
 * An update the dry run refused, as the client's error: LangGraph's own
 * refusals (InvalidUpdateError, a message LangChain cannot read) with their
 * message, and anything else the graph's writers or reducers threw on the
 * values (a reducer given null) naming the error. Only a failure of the
 * store the dry run reads from is not the client's doing: it is left as it is.
 */
function refusedUpdate(thrown: unknown, dry: DryRunSaver, where: string): unknown {
  if (thrown instanceof BatonError) return thrown;
  if (dry.storeFailure !== undefined) return thrown;
  const error = coerceError(thrown);
  const code = (error as { lc_error_code?: unknown }).lc_error_code;
  const message = error.message.replace(/\s*Troubleshooting URL: \S+\s*$/, "").trim();
  if (/^Subgraph ".*" not found$/.test(message)) {
    return new BatonError(ErrorCode.notFound, `${where}: ${message}; the checkpoint namespace names no subgraph of the thread's graph.`);
  }
  const known = error.name === "InvalidUpdateError" || code === "MESSAGE_COERCION_FAILURE" || code === "INVALID_GRAPH_NODE_RETURN_VALUE";
  return new BatonError(ErrorCode.invalid, known ? `${where}: ${message}` : `${where}: the graph could not apply these values (${error.name}: ${message}).`, {
    cause: error,
  });
}

export class ThreadService {
  constructor(
    private readonly deps: {
      threads: Threads;
      runs: RunQueue;
      assistants: Assistants;
      registry: GraphRegistry;
      checkpointer: BaseCheckpointSaver;
      store: BaseStore;
      bus: EventBus;
      authorizer: Authorizer;
    },
  ) {}

  /** The thread, after the authorizer allowed `action` on it, if its filter lets the caller see it (404 otherwise). */
  async #authorized(ctx: RequestContext, action: "read" | "update", threadId: string): Promise<Thread> {
    const { value, filter } = await this.deps.authorizer.authorize(ctx, "threads", action, { thread_id: threadId });
    const thread = await this.deps.threads.get(value.thread_id, { access: filter });
    if (thread === null) throw notFound("Thread", value.thread_id);
    return thread;
  }

  /**
   * Refuses (404) a reference to a checkpoint the thread does not have: an
   * id not saved in the named namespace, or a namespace with no checkpoint.
   * A reference that names neither is the thread's latest state, and passes.
   */
  async requireCheckpoint(threadId: string, ref: CheckpointRef | undefined): Promise<void> {
    const { id, ns } = named(ref);
    if (id === undefined && ns === "") return;
    const saved = await this.deps.checkpointer.getTuple({ configurable: { thread_id: threadId, checkpoint_ns: ns, ...(id !== undefined ? { checkpoint_id: id } : {}) } });
    if (saved !== undefined) return;
    const where = ns === "" ? "" : ` in namespace '${ns}'`;
    throw new BatonError(
      ErrorCode.notFound,
      id !== undefined
        ? `Checkpoint '${id}'${where} not found on thread '${threadId}'. Its history (POST /threads/${threadId}/history) lists the checkpoints it has.`
        : `Checkpoint namespace '${ns}' not found on thread '${threadId}'. A subgraph's namespace is in its task's 'checkpoint' in the thread state.`,
    );
  }

  /**
   * A graph instance of `graphId` for a thread. A factory is built with the
   * config of the thread's assistant (the one its last run used, or the
   * graph's system assistant), as for a run: a factory that needs its
   * configuration must not fail here.
   */
  async #instance(threadId: string, graphId: string, assistantId: unknown, checkpointer: BaseCheckpointSaver, store: BaseStore): Promise<GraphInstance> {
    const assistant =
      (typeof assistantId === "string" ? await this.deps.assistants.get(assistantId) : null) ?? (await this.deps.assistants.get(systemAssistantId(graphId)));
    const base = assistant?.graph_id === graphId ? assistant.config : {};
    const config = { ...base, configurable: { ...base.configurable, thread_id: threadId, graph_id: graphId } } as RunnableConfig;
    return this.deps.registry.instance(graphId, config, { checkpointer, store });
  }

  /** The thread's graph, or null when it has none (no run yet and no graph_id) or its graph is not loaded. */
  async #graph(thread: Thread): Promise<GraphInstance | null> {
    const graphId = thread.metadata.graph_id;
    if (typeof graphId !== "string" || !this.deps.registry.has(graphId)) return null;
    return this.#instance(thread.thread_id, graphId, thread.metadata.assistant_id, this.deps.checkpointer, this.deps.store);
  }

  #config(threadId: string, ref: CheckpointRef | undefined): RunnableConfig {
    const { id, ns } = named(ref);
    return {
      configurable: {
        thread_id: threadId,
        ...(id !== undefined ? { checkpoint_id: id } : {}),
        ...(ns !== "" ? { checkpoint_ns: ns } : {}),
        ...(ref?.checkpoint_map !== undefined && ref.checkpoint_map !== null ? { checkpoint_map: ref.checkpoint_map } : {}),
      },
    };
  }

  async state(ctx: RequestContext, id: string, options: { subgraphs?: boolean; checkpoint?: CheckpointRef | undefined }): Promise<Record<string, unknown>> {
    const thread = await this.#authorized(ctx, "read", id);
    const threadId = thread.thread_id;
    await this.requireCheckpoint(threadId, options.checkpoint);
    const graph = await this.#graph(thread);
    if (graph === null) return emptyThreadState();
    const snapshot = (await graph.getState(this.#config(threadId, options.checkpoint), { subgraphs: options.subgraphs ?? false })) as Snapshot;
    // Nothing saved: LangGraph answers an empty snapshot (with the config it was asked for).
    if (snapshot.createdAt === undefined && snapshot.metadata === undefined) return emptyThreadState();
    return toThreadState(snapshot);
  }

  async history(
    ctx: RequestContext,
    id: string,
    options: { limit: number; before?: CheckpointRef | undefined; metadata?: Record<string, unknown> | undefined; checkpoint?: CheckpointRef | undefined },
  ): Promise<Record<string, unknown>[]> {
    const thread = await this.#authorized(ctx, "read", id);
    const threadId = thread.thread_id;
    await this.requireCheckpoint(threadId, options.checkpoint);
    const beforeId = options.before?.checkpoint_id || undefined;
    if (beforeId !== undefined) {
      await this.requireCheckpoint(threadId, { checkpoint_id: beforeId, checkpoint_ns: options.before?.checkpoint_ns || options.checkpoint?.checkpoint_ns });
    }
    const graph = await this.#graph(thread);
    if (graph === null) return [];
    const out: Record<string, unknown>[] = [];
    const iterator = graph.getStateHistory(this.#config(threadId, options.checkpoint), {
      limit: options.limit,
      ...(beforeId !== undefined ? { before: { configurable: { checkpoint_id: beforeId } } } : {}),
      ...(options.metadata ? { filter: options.metadata } : {}),
    });
    for await (const snapshot of iterator) out.push(toThreadState(snapshot as Snapshot));
    return out;
  }

  /**
   * Writes a new checkpoint as if `asNode` had returned `values`. The thread
   * is locked in the database for the duration, which is refused while a run
   * is running and keeps runs from being claimed meanwhile (C1).
   */
  async update(
    ctx: RequestContext,
    id: string,
    input: { values: unknown; as_node?: string | undefined; checkpoint?: CheckpointRef | undefined },
  ): Promise<{ checkpoint: Record<string, unknown> }> {
    const thread = await this.#authorized(ctx, "update", id);
    return this.#locked(thread.thread_id, () => this.#update(thread, input));
  }

  async #locked<T>(threadId: string, work: () => Promise<T>): Promise<T> {
    const owner = `state-update-${randomUUID()}`;
    const lock = await this.deps.runs.lockThread(threadId, owner, STATE_UPDATE_LOCK_MS);
    if (!lock.locked) {
      throw new BatonError(
        ErrorCode.busy,
        `Thread '${threadId}' is busy with ${lock.busyWith}; update its state after that ends, or cancel the run.`,
        { retryAfterSeconds: 1 },
      );
    }
    try {
      return await work();
    } finally {
      await this.deps.runs.unlockThread(threadId, owner);
      // Runs that waited behind the lock may start now.
      this.deps.bus.signalWork();
    }
  }

  /**
   * Refuses what LangGraph would refuse (or misread) before it writes: an
   * `as_node` that is no node of the graph, values that are not an object
   * on a graph whose state is one, `__end__` with values.
   */
  #checkUpdate(graph: GraphInstance, graphId: string, values: unknown, asNode: string | undefined, where: string): void {
    const nodes = Object.keys(graph.nodes).filter((node) => node !== "__start__");
    if (asNode !== undefined && asNode !== "__start__" && !SPECIAL_NODES.includes(asNode) && !Object.hasOwn(graph.nodes, asNode)) {
      throw invalid(
        `${where}: as_node '${asNode}' is not a node of graph '${graphId}'. Its nodes: ${nodes.join(", ") || "(none)"}; ` +
          "also '__input__' (as input), '__copy__' (a copy of the checkpoint) and '__end__' (with values null: ends the pending tasks).",
      );
    }
    if (asNode === "__end__" && values !== null && values !== undefined) {
      throw invalid(`${where}: as_node '__end__' ends the thread's pending tasks and takes no values; send values null, or name the node that wrote them.`);
    }
    const objectState = !Object.hasOwn(graph.channels, "__root__");
    if (objectState && asNode !== "__copy__" && values !== null && values !== undefined && !(values instanceof Command) && !isPlainObject(values)) {
      throw invalid(`${where}: values must be an object of the state's keys to update (or null), got ${kindOf(values)}.`);
    }
  }

  /** A copy of the graph whose writes go nowhere (checkpoints to a dry-run saver, store writes to memory). */
  #dryRun(graph: GraphInstance): { dry: Updatable; saver: DryRunSaver } {
    const saver = new DryRunSaver(this.deps.checkpointer);
    const dry = graph.withConfig({}) as Updatable;
    dry.checkpointer = saver;
    dry.store = new InMemoryStore();
    return { dry, saver };
  }

  /** Runs `apply` against a dry-run saver first: a refused update writes nothing. */
  async #tryThenApply(
    graph: GraphInstance,
    where: string,
    apply: (graph: Updatable) => Promise<RunnableConfig>,
  ): Promise<RunnableConfig> {
    const { dry, saver } = this.#dryRun(graph);
    try {
      await apply(dry);
    } catch (thrown) {
      throw refusedUpdate(thrown, saver, where);
    }
    return apply(graph as Updatable);
  }

  async #update(
    thread: Thread,
    input: { values: unknown; as_node?: string | undefined; checkpoint?: CheckpointRef | undefined },
  ): Promise<{ checkpoint: Record<string, unknown> }> {
    const threadId = thread.thread_id;
    const graph = await this.#graph(thread);
    if (graph === null) {
      throw new BatonError(
        ErrorCode.conflict,
        `Thread '${threadId}' has no graph yet: run a graph on it first, or create it with metadata.graph_id set to one of: ${this.deps.registry.ids.join(", ")}.`,
      );
    }
    await this.requireCheckpoint(threadId, input.checkpoint);
    const graphId = thread.metadata.graph_id as string;
    const root = named(input.checkpoint).ns === "";
    if (root) this.#checkUpdate(graph, graphId, input.values, input.as_node, "Invalid state update");
    // The graph id goes into the new checkpoint's metadata, as on the official
    // server: LangGraph's updateState does not copy it there, the saver does.
    const configurable = { ...this.#config(threadId, input.checkpoint).configurable, graph_id: graphId, [CONFIGURABLE_METADATA_KEY]: true };
    const next = await this.#tryThenApply(graph, "Invalid state update", (g) => g.updateState({ configurable }, input.values, input.as_node));
    await this.#record(graph, threadId);
    // The new checkpoint's reference as LangGraph returns it (a subgraph's carries its checkpoint map).
    return { checkpoint: referenceKeys(next) };
  }

  /** Copies the thread's state after an update onto its record. */
  async #record(graph: GraphInstance, threadId: string): Promise<void> {
    const snapshot = (await graph.getState({ configurable: { thread_id: threadId } })) as Snapshot;
    const interrupts = interruptsOf(snapshot);
    await this.deps.threads.setState(threadId, {
      values: stateValues(snapshot),
      interrupts,
      // Tasks still to run (a breakpoint, an answered or pending interrupt) leave it interrupted.
      status: (snapshot.next?.length ?? 0) > 0 || Object.keys(interrupts).length > 0 ? "interrupted" : "idle",
    });
  }

  /**
   * Creates a thread, with its first supersteps when given, all or nothing:
   * every superstep is tried on a dry-run saver before the thread exists, so
   * a refused one (an unknown node, values the state cannot take) leaves no
   * thread behind; the thread is then created and the supersteps applied
   * under its lock, and it is deleted again if that fails.
   *
   * With `if_exists: do_nothing` and an existing thread, the thread is
   * returned as it is: the supersteps are not applied a second time (a
   * retried create must not repeat the history it wrote).
   */
  async create(input: {
    thread_id: string;
    metadata: Metadata;
    if_exists: IfExists;
    supersteps?: { updates: SuperstepUpdate[] }[] | undefined;
    ttl?: ThreadTtl | null | undefined;
  }): Promise<Thread> {
    const supersteps = input.supersteps ?? [];
    if (supersteps.length === 0) return this.deps.threads.create({ thread_id: input.thread_id, metadata: input.metadata, if_exists: input.if_exists, ttl: input.ttl });
    const graphId = input.metadata.graph_id;
    if (typeof graphId !== "string" || !this.deps.registry.has(graphId)) {
      throw invalid(
        `supersteps need the thread's graph: set graph_id (or metadata.graph_id) to one of: ${this.deps.registry.ids.join(", ")}` +
          (typeof graphId === "string" ? ` ('${graphId}' is not loaded).` : "."),
      );
    }
    const record = { thread_id: input.thread_id, metadata: input.metadata, if_exists: input.if_exists, ttl: input.ttl };
    const existing = await this.deps.threads.get(input.thread_id);
    // An existing thread: returned as it is (do_nothing), or refused by the backend (raise).
    if (existing !== null) return this.deps.threads.create(record);
    const steps = supersteps.map((step, i) => {
      if (step.updates.length === 0) throw invalid(`supersteps.${i}: a superstep needs at least one update.`);
      return {
        updates: step.updates.map((update) => ({
          values: update.command !== undefined && update.command !== null ? new Command(update.command as ConstructorParameters<typeof Command>[0]) : update.values,
          asNode: update.as_node,
        })),
      };
    });
    const graph = await this.#instance(input.thread_id, graphId, input.metadata.assistant_id, this.deps.checkpointer, this.deps.store);
    steps.forEach((step, i) =>
      step.updates.forEach((update, j) => this.#checkUpdate(graph, graphId, update.values, update.asNode, `supersteps.${i}.updates.${j}`)),
    );
    const configurable = { thread_id: input.thread_id, checkpoint_ns: "", graph_id: graphId, [CONFIGURABLE_METADATA_KEY]: true };
    // The dry run, one superstep at a time, so a refusal names its superstep.
    const { dry, saver } = this.#dryRun(graph);
    let config: RunnableConfig = { configurable };
    for (const [i, step] of steps.entries()) {
      try {
        config = await dry.bulkUpdateState({ configurable: { ...config.configurable, graph_id: graphId, [CONFIGURABLE_METADATA_KEY]: true } }, [step]);
      } catch (thrown) {
        throw refusedUpdate(thrown, saver, `supersteps.${i}`);
      }
    }
    // Created with "raise" whatever the request said: of concurrent creates
    // of one new thread, only the one that created it applies its
    // supersteps; a do_nothing loser answers the winner's thread as it is.
    let thread: Thread;
    try {
      thread = await this.deps.threads.create({ ...record, if_exists: "raise" });
    } catch (error) {
      const other = input.if_exists === "do_nothing" && error instanceof BatonError && error.code === ErrorCode.conflict ? await this.deps.threads.get(input.thread_id) : null;
      if (other === null) throw error;
      return other;
    }
    let locked = false;
    try {
      await this.#locked(thread.thread_id, async () => {
        locked = true;
        await (graph as Updatable).bulkUpdateState({ configurable }, steps);
        await this.#record(graph, thread.thread_id);
      });
    } catch (thrown) {
      // Not the client's doing (the dry run passed): the thread goes, so no half-written history stays.
      // (A thread a run took before the lock is that run's: it stays, and the answer says it is busy.)
      if (locked) await this.deps.threads.delete(thread.thread_id).catch(() => undefined);
      throw thrown;
    }
    const created = await this.deps.threads.get(thread.thread_id);
    if (created === null) throw notFound("Thread", thread.thread_id);
    return created;
  }
}
