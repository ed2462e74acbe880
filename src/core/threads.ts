/**
 * Thread state: read, history and updates go through a graph instance of the
 * thread's graph with the backend's checkpointer attached.
 */
import { randomUUID } from "node:crypto";
import type { RunnableConfig } from "@langchain/core/runnables";
import type { BaseStore } from "@langchain/langgraph";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import { systemAssistantId } from "./assistants.ts";
import { BatonError, ErrorCode, notFound } from "./errors.ts";
import { CONFIGURABLE_METADATA_KEY } from "./executor.ts";
import type { GraphInstance, GraphRegistry } from "./graphs.ts";
import type { Assistants, EventBus, RunQueue, Threads } from "./ports.ts";
import { emptyThreadState, interruptsOf, referenceKeys, stateValues, toThreadState, type Snapshot } from "./state.ts";
import type { Thread } from "./types.ts";

/** Longest a state update may hold its thread (a crashed update's lock expires). */
const STATE_UPDATE_LOCK_MS = 30_000;

/** A checkpoint as a client names it; a subgraph's carries its namespace (and no id when it is the latest). */
export interface CheckpointRef {
  checkpoint_id?: string | undefined;
  checkpoint_ns?: string | undefined;
  checkpoint_map?: unknown;
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
    },
  ) {}

  async get(threadId: string): Promise<Thread> {
    const thread = await this.deps.threads.get(threadId);
    if (thread === null) throw notFound("Thread", threadId);
    return thread;
  }

  /**
   * The thread's graph. A factory is built with the config of the thread's
   * assistant (the one its last run used, or the graph's system assistant),
   * as for a run: a factory that needs its configuration must not fail here.
   */
  async #graph(thread: Thread): Promise<GraphInstance | null> {
    const graphId = thread.metadata.graph_id;
    if (typeof graphId !== "string" || !this.deps.registry.has(graphId)) return null;
    const assistantId = thread.metadata.assistant_id;
    const assistant =
      (typeof assistantId === "string" ? await this.deps.assistants.get(assistantId) : null) ?? (await this.deps.assistants.get(systemAssistantId(graphId)));
    const base = assistant?.graph_id === graphId ? assistant.config : {};
    const config = { ...base, configurable: { ...base.configurable, thread_id: thread.thread_id, graph_id: graphId } } as RunnableConfig;
    return this.deps.registry.instance(graphId, config, { checkpointer: this.deps.checkpointer, store: this.deps.store });
  }

  #config(threadId: string, ref: CheckpointRef | undefined): RunnableConfig {
    return {
      configurable: {
        thread_id: threadId,
        ...(ref?.checkpoint_id ? { checkpoint_id: ref.checkpoint_id } : {}),
        ...(ref?.checkpoint_ns ? { checkpoint_ns: ref.checkpoint_ns } : {}),
        ...(ref?.checkpoint_map !== undefined && ref.checkpoint_map !== null ? { checkpoint_map: ref.checkpoint_map } : {}),
      },
    };
  }

  async state(threadId: string, options: { subgraphs?: boolean; checkpoint?: CheckpointRef }): Promise<Record<string, unknown>> {
    const thread = await this.get(threadId);
    const config = this.#config(threadId, options.checkpoint);
    const graph = await this.#graph(thread);
    if (graph === null) return emptyThreadState();
    const snapshot = (await graph.getState(config, { subgraphs: options.subgraphs ?? false })) as Snapshot;
    if (snapshot.config?.configurable?.checkpoint_id === undefined) {
      if (options.checkpoint?.checkpoint_id) throw notFound("Checkpoint", options.checkpoint.checkpoint_id);
      return emptyThreadState();
    }
    return toThreadState(snapshot);
  }

  async history(
    threadId: string,
    options: { limit: number; before?: CheckpointRef | undefined; metadata?: Record<string, unknown> | undefined; checkpoint?: CheckpointRef | undefined },
  ): Promise<Record<string, unknown>[]> {
    const thread = await this.get(threadId);
    const config = this.#config(threadId, options.checkpoint);
    const graph = await this.#graph(thread);
    if (graph === null) return [];
    const out: Record<string, unknown>[] = [];
    const iterator = graph.getStateHistory(config, {
      limit: options.limit,
      ...(options.before?.checkpoint_id ? { before: { configurable: { checkpoint_id: options.before.checkpoint_id } } } : {}),
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
    threadId: string,
    input: { values: unknown; as_node?: string | undefined; checkpoint?: CheckpointRef | undefined },
  ): Promise<{ checkpoint: Record<string, unknown> }> {
    const thread = await this.get(threadId);
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
      return await this.#update(thread, input);
    } finally {
      await this.deps.runs.unlockThread(threadId, owner);
      // Runs that waited behind the lock may start now.
      this.deps.bus.signalWork();
    }
  }

  async #update(
    thread: Thread,
    input: { values: unknown; as_node?: string | undefined; checkpoint?: CheckpointRef | undefined },
  ): Promise<{ checkpoint: Record<string, unknown> }> {
    const threadId = thread.thread_id;
    const config = this.#config(threadId, input.checkpoint);
    const graph = await this.#graph(thread);
    if (graph === null) {
      throw new BatonError(
        ErrorCode.conflict,
        `Thread '${threadId}' has no graph yet: run a graph on it first, or create it with metadata.graph_id set to one of: ${this.deps.registry.ids.join(", ")}.`,
      );
    }
    // The graph id goes into the new checkpoint's metadata, as on the official
    // server: LangGraph's updateState does not copy it there, the saver does.
    const configurable = { ...config.configurable, graph_id: thread.metadata.graph_id, [CONFIGURABLE_METADATA_KEY]: true };
    const next = await graph.updateState({ configurable }, input.values, input.as_node);
    const snapshot = (await graph.getState({ configurable: { thread_id: threadId } })) as Snapshot;
    const interrupts = interruptsOf(snapshot);
    await this.deps.threads.setState(threadId, {
      values: stateValues(snapshot),
      interrupts,
      // Tasks still to run (a breakpoint, an answered or pending interrupt) leave it interrupted.
      status: (snapshot.next?.length ?? 0) > 0 || Object.keys(interrupts).length > 0 ? "interrupted" : "idle",
    });
    // The new checkpoint's reference as LangGraph returns it (a subgraph's carries its checkpoint map).
    return { checkpoint: referenceKeys(next) };
  }
}
