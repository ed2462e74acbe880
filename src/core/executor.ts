/**
 * Runs one graph for one run attempt and turns LangGraph's stream into wire
 * events on the bus. Returns the outcome the worker records, fenced by its
 * lease. Knows nothing of HTTP or of any datastore.
 */
import type { RunnableConfig } from "@langchain/core/runnables";
import { isBaseMessageChunk, type BaseMessageChunk } from "@langchain/core/messages";
import { Command } from "@langchain/langgraph";
import type { BaseStore } from "@langchain/langgraph";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import { BatonError, ErrorCode, coerceError } from "./errors.ts";
import type { GraphInstance, GraphLease, GraphRegistry } from "./graphs.ts";
import type { Assistants, EventBus, RunOutcome } from "./ports.ts";
import { toWire } from "./serialize.ts";
import { LegacyProtocolMessages } from "./protocol-messages.ts";
import { nodeSpanHandler } from "./tracing.ts";
import { interruptsOf, stateValues, wireCheckpointPayload, wireTaskPayload, type Snapshot } from "./state.ts";
import { stoppedFailure } from "./stopped.ts";
import { threadLogOf, type CancelAction, type Run, type RunnableConfigRecord, type StreamMode } from "./types.ts";

export interface ExecutorDeps {
  registry: GraphRegistry;
  assistants: Assistants;
  checkpointer: BaseCheckpointSaver;
  store: BaseStore;
  bus: EventBus;
}

/** Why a run's signal was aborted. */
export type StopReason = { kind: "cancel"; action: CancelAction } | { kind: "timeout" } | { kind: "shutdown" };

export interface ExecutionResult {
  outcome: RunOutcome & { output: unknown };
  /** Set when the run stopped for shutdown and should be handed back, not finished. */
  handBack: boolean;
}

const mergeConfig = (base: RunnableConfig, over: RunnableConfig): RunnableConfig => ({
  ...base,
  ...over,
  configurable: { ...base.configurable, ...over.configurable },
  metadata: { ...base.metadata, ...over.metadata },
  tags: [...(base.tags ?? []), ...(over.tags ?? [])],
});

/**
 * A config as the wire spells it (`recursion_limit`), in LangGraph's
 * spelling (`recursionLimit`). The official server maps this key alone.
 */
function langGraphConfig(config: RunnableConfigRecord | undefined): RunnableConfig {
  const { recursion_limit: recursionLimit, ...rest } = config ?? {};
  return { ...rest, ...(typeof recursionLimit === "number" ? { recursionLimit } : {}) } as RunnableConfig;
}

/** The config a run's graph is invoked with. */
export async function runConfig(run: Run, assistants: Assistants): Promise<RunnableConfig> {
  const assistant = await assistants.get(run.assistant_id);
  const merged = mergeConfig(langGraphConfig(assistant?.config), langGraphConfig(run.kwargs.config));
  const checkpointId = run.kwargs.checkpoint_id ?? run.kwargs.checkpoint?.checkpoint_id;
  merged.configurable = {
    ...merged.configurable,
    thread_id: run.thread_id,
    run_id: run.run_id,
    assistant_id: run.assistant_id,
    graph_id: run.graph_id,
    ...(checkpointId ? { checkpoint_id: checkpointId } : {}),
    ...(run.kwargs.checkpoint?.checkpoint_ns ? { checkpoint_ns: run.kwargs.checkpoint.checkpoint_ns } : {}),
  };
  // The assistant's metadata under the run's, as the official server merges them.
  merged.metadata = {
    ...assistant?.metadata,
    ...merged.metadata,
    ...run.metadata,
    run_id: run.run_id,
    thread_id: run.thread_id,
    assistant_id: run.assistant_id,
    graph_id: run.graph_id,
    run_attempt: run.attempt,
  };
  const context = { ...(assistant?.context ?? {}), ...(run.kwargs.context ?? {}) };
  if (Object.keys(context).length > 0) (merged as RunnableConfig & { context?: unknown }).context = context;
  return merged;
}

/** LangGraph yields `[namespace, mode, payload]` with subgraphs on, `[mode, payload]` without. */
function splitChunk(chunk: unknown, subgraphs: boolean): [string[], string, unknown] {
  if (subgraphs) return chunk as [string[], string, unknown];
  const [mode, payload] = chunk as [string, unknown];
  return [[], mode, payload];
}

/**
 * A stream chunk as the official server sends it: checkpoints carry
 * references, not LangGraph's configs (which hold internal keys).
 */
function wirePayload(mode: string, payload: unknown): unknown {
  if (mode === "tasks") return wireTaskPayload(payload);
  if (mode === "checkpoints") {
    const { values, metadata, next } = payload as { values: unknown; metadata: unknown; next: unknown };
    return { values, metadata, next };
  }
  if (mode !== "debug") return payload;
  const chunk = payload as { type?: string; payload?: unknown };
  if (chunk.type === "checkpoint") return { ...chunk, payload: wireCheckpointPayload(chunk.payload) };
  if (chunk.type === "task_result") return { ...chunk, payload: wireTaskPayload(chunk.payload) };
  return chunk;
}

/** The event name suffix of a namespace (`|a:1|b:2`, or nothing for the root). */
const nsSuffix = (namespace: string[]): string => (namespace.length > 0 ? `|${namespace.join("|")}` : "");

/** Maps the requested wire stream modes to LangGraph stream modes (a protocol run also streams LangGraph's `messages` and `tools`). */
function langGraphModes(modes: readonly StreamMode[], protocol: boolean): string[] {
  const out = new Set<string>(["values", ...(protocol ? ["messages", "tools"] : [])]);
  for (const mode of modes) {
    if (mode === "events") continue;
    out.add(mode === "messages-tuple" ? "messages" : mode);
  }
  return [...out];
}

/**
 * A protocol run's LangGraph `messages` or `tools` chunk as its event
 * (`protocol.messages`: `[event, {langgraph_node, run_id}]` with the model
 * call's run id, which tells messages apart; `protocol.tools`: the tool
 * event, its error as a message).
 */
function protocolPayload(mode: "messages" | "tools", payload: unknown): unknown {
  if (mode === "messages") {
    const [event, metadata] = payload as [unknown, Record<string, unknown> | undefined];
    return [toWire(event), { langgraph_node: metadata?.langgraph_node, run_id: metadata?.run_id }];
  }
  const event = payload as Record<string, unknown>;
  return toWire(event.error instanceof Error ? { ...event, error: event.error.message } : event);
}

/**
 * The legacy `messages` mode, as the official server produces it: a streamed
 * message is sent as it grows (`messages/metadata` once, then
 * `messages/partial` with the text so far), and every message of the root
 * state that has an id is sent once as `messages/complete` when a `values`
 * chunk first holds it (the input's messages included).
 */
class LegacyMessages {
  readonly #streamed = new Map<string, BaseMessageChunk>();
  readonly #completed = new Set<string>();

  /** A chunk of LangGraph's `messages` mode: `[message, metadata]`. */
  streamed(message: unknown, metadata: unknown, publish: (event: string, data: unknown) => void): void {
    // Whole messages a node returns are sent from the state, like the official server.
    if (!isBaseMessageChunk(message) || !message.id) return;
    const previous = this.#streamed.get(message.id);
    if (previous === undefined) {
      // The official server's metadata is the chat model's callback metadata, which has no tags.
      const { tags: _tags, ...rest } = (metadata ?? {}) as Record<string, unknown>;
      publish("messages/metadata", { [message.id]: { metadata: toWire(rest) } });
    }
    const merged = previous === undefined ? message : previous.concat(message);
    this.#streamed.set(message.id, merged);
    publish("messages/partial", [toWire(merged)]);
  }

  /** A root `values` chunk. */
  values(state: unknown, publish: (event: string, data: unknown) => void): void {
    if (typeof state !== "object" || state === null || !("messages" in state)) return;
    const messages = (state).messages;
    const fresh = (Array.isArray(messages) ? messages : [messages]).filter((message) => {
      const id = (message as { id?: unknown } | null)?.id;
      if (typeof id !== "string" || id === "" || this.#completed.has(id)) return false;
      this.#completed.add(id);
      return true;
    });
    if (fresh.length > 0) publish("messages/complete", toWire(fresh));
  }
}

/**
 * The configurable key carrying the executing worker's lease (owner and
 * attempt) to the checkpoint saver, which refuses writes once the lease is
 * lost (backends shared by several processes).
 */
export const FENCE_KEY = "__baton_fence";

/**
 * The configurable key carrying a run's {@link CheckpointWrites}: Baton's
 * saver registers each write it starts there, so the run can wait for them.
 */
export const WRITES_KEY = "__baton_writes";

/**
 * The checkpoint writes one run attempt has started and not yet seen end.
 *
 * LangGraph writes checkpoints in the background (durability "async", the
 * default) and, when one write fails, ends the graph's stream at once
 * without waiting for the others. A refused write of step 2 can so end the
 * run while step 1's checkpoint is still on its way; the run would be
 * settled first, and that checkpoint then refused by the fence, as the
 * attempt no longer holds the run. The thread would lose a step it
 * finished. {@link settled} waits for every write, including those
 * LangGraph chains behind one still in flight.
 */
export class CheckpointWrites {
  readonly #pending = new Set<Promise<unknown>>();

  /** Registers a write; its failure stays the caller's to handle. */
  track(write: Promise<unknown>): void {
    const settled: Promise<unknown> = write.then(
      () => this.#pending.delete(settled),
      () => this.#pending.delete(settled),
    );
    this.#pending.add(settled);
  }

  /** Resolves once no write is in flight, each having succeeded or failed. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) {
      await Promise.all(this.#pending);
      // LangGraph starts a chained write in a promise callback: let those run, then look again.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

/**
 * The configurable key that asks the checkpoint saver to copy the run's
 * configurable into each checkpoint's metadata, as the official server does.
 */
export const CONFIGURABLE_METADATA_KEY = "__baton_configurable_metadata";

/**
 * Runs the graph of one run attempt: its events go to the bus as they come,
 * its outcome is returned. A stop (a cancel, the time limit, a shutdown)
 * and a failure of the graph are outcomes too; only the database staying
 * away is thrown.
 */
export async function executeRun(
  run: Run,
  deps: ExecutorDeps,
  signal: AbortSignal,
  stopReason: () => StopReason | undefined,
  fence?: { owner: string; attempt: number },
): Promise<ExecutionResult> {
  const threadLog = threadLogOf(run);
  const publish = (event: string, data: unknown) => deps.bus.publish(run.run_id, event, data, run.attempt, threadLog);
  publish("metadata", { run_id: run.run_id, attempt: run.attempt });
  const config = await runConfig(run, deps.assistants);
  const writes = new CheckpointWrites();
  config.configurable = {
    ...config.configurable,
    [CONFIGURABLE_METADATA_KEY]: true,
    [WRITES_KEY]: writes,
    ...(fence !== undefined ? { [FENCE_KEY]: fence } : {}),
  };
  // The graph's nodes as spans, only when this run is traced (src/core/tracing.ts).
  const nodeSpans = nodeSpanHandler();
  if (nodeSpans !== undefined && (config.callbacks === undefined || Array.isArray(config.callbacks))) config.callbacks = [...(config.callbacks ?? []), nodeSpans];
  const wire = new WireEvents(run, publish);
  let graph: GraphInstance | undefined;
  // A factory's instance is this run's alone until released (agent pool);
  // it goes back only when the run succeeded, else it may hold broken state.
  let lease: GraphLease | undefined;
  let succeeded = false;
  try {
    lease = await deps.registry.lease(run.graph_id, config, { checkpointer: deps.checkpointer, store: deps.store }, run.owner);
    graph = lease.graph;
    await requireStartCheckpoint(run, config, deps.checkpointer);
    await streamGraph(graph, run, streamOptions(run, config, signal), wire);
    // The stream ends once LangGraph's checkpoint writes are durable.
    wire.release();
    const outcome = await successOutcome(graph, run, wire);
    // A stop that came after the stream ended still stops the instance's reuse.
    succeeded = stopReason() === undefined;
    return { handBack: false, outcome };
  } catch (thrown) {
    // The thread is read back, and the run settled, only after the writes the graph started.
    await writes.settled();
    wire.release();
    // Awaited here, so the instance is released only after the state read-back.
    return await stoppedOrFailed(thrown, graph, run, stopReason(), publish);
  } finally {
    lease?.release(succeeded);
  }
}

/**
 * Turns LangGraph's stream chunks into the run's wire events, in the modes
 * the run asked for, and keeps what its outcome is made of (the last root
 * values, whether the graph stopped at an interrupt).
 */
class WireEvents {
  readonly #run: Run;
  readonly #publish: (event: string, data: unknown) => void;
  readonly #wants: Set<StreamMode>;
  readonly #messages = new LegacyMessages();
  /** A protocol run's messages when the project's LangGraph has no v3 stream (src/core/protocol-messages.ts). */
  readonly #legacyProtocol = new LegacyProtocolMessages();
  /** The last root values chunk. */
  lastValues: unknown = null;
  /** The last root values chunk that was the state (not an `__interrupt__` notice). */
  lastState: unknown = undefined;
  sawInterrupt = false;
  /**
   * The graph's events from its first interrupt notice on, held until the
   * graph's stream ends: LangGraph sends the notice before the checkpoint
   * writes behind it are durable (at once in memory, not on Postgres), and
   * a client that reads the thread on seeing it (RemoteGraph.invoke,
   * useStream) must find the interrupt there.
   */
  #held: [string, unknown][] | undefined;

  constructor(run: Run, publish: (event: string, data: unknown) => void) {
    this.#run = run;
    this.#publish = publish;
    this.#wants = new Set<StreamMode>(run.kwargs.stream_mode);
  }

  get wantsEvents(): boolean {
    return this.#wants.has("events");
  }

  /** Publishes an event, or holds it after an interrupt notice. */
  readonly live = (event: string, data: unknown): void => {
    if (this.#held) this.#held.push([event, data]);
    else this.#publish(event, data);
  };

  /** Publishes what was held. */
  release(): void {
    for (const [event, data] of this.#held ?? []) this.#publish(event, data);
    this.#held = undefined;
  }

  chunk(namespace: string[], mode: string, payload: unknown): void {
    const suffix = namespace.length > 0 ? `|${namespace.join("|")}` : "";
    if ((mode === "values" || mode === "updates") && typeof payload === "object" && payload !== null && "__interrupt__" in payload) this.#held ??= [];
    if (mode === "values" && namespace.length === 0) {
      this.lastValues = payload;
      if (typeof payload === "object" && payload !== null && "__interrupt__" in payload) this.sawInterrupt = true;
      else this.lastState = payload;
    }
    if (namespace.length > 0 && !this.#run.kwargs.stream_subgraphs) return;
    if (this.#run.kwargs.protocol === true && mode === "messages" && LegacyProtocolMessages.isLegacy(payload)) {
      for (const entry of this.#legacyProtocol.chunk(namespace, payload as [unknown, Record<string, unknown> | undefined])) this.live(`protocol.messages${nsSuffix(entry.namespace)}`, entry.payload);
      return;
    }
    if (this.#run.kwargs.protocol === true && mode === "values" && namespace.length === 0) {
      for (const entry of this.#legacyProtocol.finishAll()) this.live(`protocol.messages${nsSuffix(entry.namespace)}`, entry.payload);
    }
    if (this.#run.kwargs.protocol === true && (mode === "messages" || mode === "tools" || mode === "checkpoints")) {
      // A protocol run's `checkpoints` chunks are LangGraph's envelopes (`{id, parent_id, step, source}`), sent before each step's values.
      this.live(`protocol.${mode}${suffix}`, mode === "checkpoints" ? toWire(payload) : protocolPayload(mode, payload));
      return;
    }
    if (mode === "messages") {
      const [message, metadata] = payload as [unknown, unknown];
      if (this.#wants.has("messages-tuple")) this.live(`messages${suffix}`, [toWire(message), toWire(metadata)]);
      if (this.#wants.has("messages")) this.#messages.streamed(message, metadata, this.live);
      return;
    }
    if (this.#wants.has(mode as StreamMode)) this.live(`${mode}${suffix}`, toWire(wirePayload(mode, payload)));
    if (mode === "values" && namespace.length === 0 && this.#wants.has("messages")) this.#messages.values(payload, this.live);
  }
}

/** The options a run's graph is streamed with. */
function streamOptions(run: Run, config: RunnableConfig, signal: AbortSignal): Record<string, unknown> {
  return {
    ...config,
    signal,
    streamMode: langGraphModes(run.kwargs.stream_mode, run.kwargs.protocol === true),
    // A protocol run takes LangGraph's protocol form of messages (content blocks from the chat model's stream events), as the official server's protocol runs do.
    ...(run.kwargs.protocol === true ? { version: "v3" } : {}),
    // Subgraph namespaces cost about a millisecond per run: only when asked.
    subgraphs: run.kwargs.stream_subgraphs,
    // The graph's root run is the run itself, in events and traces, as on the official server.
    runId: run.run_id,
    ...(run.kwargs.interrupt_before ? { interruptBefore: run.kwargs.interrupt_before } : {}),
    ...(run.kwargs.interrupt_after ? { interruptAfter: run.kwargs.interrupt_after } : {}),
    ...(run.kwargs.durability ? { durability: run.kwargs.durability } : {}),
  };
}

/** Streams the graph to its end, every chunk through `wire`. */
async function streamGraph(graph: GraphInstance, run: Run, options: Record<string, unknown>, wire: WireEvents): Promise<void> {
  const input = run.kwargs.command !== null ? new Command(run.kwargs.command as ConstructorParameters<typeof Command>[0]) : run.kwargs.input;
  if (wire.wantsEvents) {
    for await (const event of graph.streamEvents(input, { ...options, version: "v2" })) {
      // LangGraph's own bookkeeping steps (`__start__`...), hidden as on the official server.
      if (event.tags?.includes("langsmith:hidden")) continue;
      const chunk = event?.data?.chunk;
      if (event.event === "on_chain_stream" && (event.parent_ids?.length ?? 0) === 0 && Array.isArray(chunk)) {
        wire.chunk(...splitChunk(chunk, run.kwargs.stream_subgraphs));
      } else {
        wire.live("events", toWire(event));
      }
    }
  } else {
    for await (const chunk of await graph.stream(input, options)) {
      wire.chunk(...splitChunk(chunk, run.kwargs.stream_subgraphs));
    }
  }
}

/**
 * The outcome of a graph that ran to the end of its stream. The last values
 * chunk is the thread's final state, unless the run stopped at an interrupt
 * (then the pending tasks are read back).
 */
async function successOutcome(graph: GraphInstance, run: Run, wire: WireEvents): Promise<ExecutionResult["outcome"]> {
  const stoppedEarly = wire.sawInterrupt || run.kwargs.interrupt_before !== null || run.kwargs.interrupt_after !== null || wire.lastState === undefined;
  const { values, interrupts, status } = stoppedEarly
    ? await threadAfter(graph, run)
    : { values: stateValues({ values: wire.lastState } as Snapshot), interrupts: {}, status: "idle" as const };
  return {
    status: "success",
    error: null,
    erase: false,
    // At an interrupt LangGraph's last values chunk is only `__interrupt__`:
    // answer with the state and the interrupt, as the official server does.
    output: { ...(values ?? {}), ...((toWire(wire.lastValues)) ?? {}) },
    thread: { values, interrupts, status },
  };
}

/**
 * What a run that did not reach its end comes to: handed back (shutdown),
 * interrupted (a cancel), timed out, or failed with the graph's error.
 */
async function stoppedOrFailed(
  thrown: unknown,
  graph: GraphInstance | undefined,
  run: Run,
  reason: StopReason | undefined,
  publish: (event: string, data: unknown) => void,
): Promise<ExecutionResult> {
  if (reason === undefined && thrown instanceof BatonError && thrown.code === ErrorCode.unavailable) {
    // The database stayed away longer than its retries: not the graph's
    // fault, so not its error. Thrown on, the run is left unsettled; its
    // lease expires and it is retried from its last checkpoint.
    throw thrown;
  }
  const error = coerceError(thrown);
  const { status: _status, ...thread } = await threadAfter(graph, run).catch(() => ({ values: null, interrupts: {}, status: "idle" as const }));
  if (reason?.kind === "shutdown") {
    return { handBack: true, outcome: { status: "interrupted", error: null, erase: false, output: null, thread: { ...thread, status: "idle" } } };
  }
  if (reason?.kind === "cancel") {
    const failure = stoppedFailure(run.run_id, reason.action, true);
    publish("error", failure);
    return {
      handBack: false,
      outcome: {
        status: "interrupted",
        error: failure.message,
        erase: reason.action === "rollback",
        output: { __error__: failure },
        thread: { ...thread, status: Object.keys(thread.interrupts).length > 0 ? "interrupted" : "idle" },
      },
    };
  }
  const failure =
    reason?.kind === "timeout"
      ? { error: "TimeoutError", message: `Run ${run.run_id} exceeded its time limit.` }
      : { error: error.name || "Error", message: error.message };
  publish("error", failure);
  return {
    handBack: false,
    outcome: {
      status: reason?.kind === "timeout" ? "timeout" : "error",
      error: failure.message,
      erase: false,
      output: { __error__: failure },
      thread: { ...thread, status: "error" },
    },
  };
}

/**
 * The checkpoint a run starts from, when it names one, must exist: LangGraph
 * would start from an empty state instead, and the thread would lose its
 * conversation. Checked when the run is created; checked again here, for a
 * checkpoint removed while the run waited (a rollback of the run that wrote it).
 */
async function requireStartCheckpoint(run: Run, config: RunnableConfig, checkpointer: BaseCheckpointSaver): Promise<void> {
  const id = config.configurable?.checkpoint_id as unknown;
  const ns = config.configurable?.checkpoint_ns as unknown;
  const named = typeof id === "string" && id !== "";
  if (!named && !(typeof ns === "string" && ns !== "")) return;
  const saved = await checkpointer.getTuple({
    configurable: { thread_id: run.thread_id, checkpoint_ns: typeof ns === "string" ? ns : "", ...(named ? { checkpoint_id: id } : {}) },
  });
  if (saved !== undefined) return;
  throw new BatonError(
    ErrorCode.notFound,
    `Checkpoint '${named ? id : String(ns)}' not found on thread '${run.thread_id}' (removed since the run was created); the run did not start.`,
  );
}

/**
 * The thread after a run that stopped early: `interrupted` while tasks
 * remain (an `interrupt()` or an `interrupt_before`/`interrupt_after`
 * breakpoint), as the official server sets it.
 */
async function threadAfter(graph: GraphInstance | undefined, run: Run): Promise<RunOutcome["thread"]> {
  if (graph === undefined) return { values: null, interrupts: {}, status: "idle" };
  const state = await graph.getState({ configurable: { thread_id: run.thread_id } });
  const interrupts = interruptsOf(state);
  const waiting = (state.next?.length ?? 0) > 0 || Object.keys(interrupts).length > 0;
  return { values: stateValues(state), interrupts, status: waiting ? "interrupted" : "idle" };
}
