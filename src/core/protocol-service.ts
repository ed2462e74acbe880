/**
 * Agent Protocol v2 on a thread (docs/streaming.md): commands (`run.start`,
 * which resumes a thread waiting at an interrupt, and `input.respond`)
 * become runs through RunService (the same admission,
 * access and queue as any run), and event streams are read from the
 * thread's log (src/core/protocol.ts), filtered by channel and namespace,
 * from a `since` cursor that any API process understands.
 */
import { BatonError, ErrorCode } from "./errors.ts";
import type { RequestContext } from "./context.ts";
import { agentTree, atOrAfter, matchesFilter, positionOf, protocolEvents, type ProtocolEvent, type ProtocolFilter } from "./protocol.ts";
import type { CreateRunInput, RunService } from "./runs.ts";
import type { ThreadService } from "./threads.ts";
import { isFinalRunStatus, type MultitaskStrategy, type Run, type StreamMode, type ThreadEvent } from "./types.ts";

/** A client → server command (the contract's ProtocolCommand). */
export interface ProtocolCommand {
  id: number;
  method: string;
  params?: Record<string, unknown> | undefined;
}

export type ProtocolErrorCode = "invalid_argument" | "unknown_command" | "unknown_error" | "no_such_run" | "no_such_subscription" | "permission_denied" | "not_supported";

export type ProtocolResponse =
  | { type: "success"; id: number; result: Record<string, unknown>; meta?: Record<string, unknown> }
  | { type: "error"; id: number | null; error: ProtocolErrorCode; message: string };

/** The modes a protocol run streams: what the protocol's channels are made from. */
const PROTOCOL_RUN_MODES: StreamMode[] = ["values", "updates", "custom", "tasks"];
const STRATEGIES: readonly MultitaskStrategy[] = ["reject", "enqueue", "interrupt", "rollback"];
/** How long agent.getTree may read the thread's log (ms): a guard, as the read stops at the newest entry. */
const TREE_READ_LIMIT_MS = 10_000;
/** Without a cursor, a stream starts at the thread's latest run: the runs older than it, among this many, are skipped. */
const RECENT_RUNS = 50;

export const protocolError = (id: number | null, error: ProtocolErrorCode, message: string): ProtocolResponse => ({ type: "error", id, error, message });

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

export class ProtocolService {
  readonly #runs: RunService;
  readonly #threads: Pick<ThreadService, "state">;

  constructor(runs: RunService, threads: Pick<ThreadService, "state">) {
    this.#runs = runs;
    this.#threads = threads;
  }

  /**
   * The protocol events of the thread for a caller allowed to read it (a
   * thread that does not exist yet is allowed: it may be created by the
   * client's first `run.start`). With `since`, exactly the events after it;
   * without, the thread's latest run from its start (while its events are
   * kept), then what comes.
   */
  async events(ctx: RequestContext, threadId: string): Promise<(filter: ProtocolFilter, since: number | undefined, signal: AbortSignal) => AsyncIterable<ProtocolEvent>> {
    const log = await this.#runs.threadLog(ctx, threadId, { allowMissing: true });
    const runs = this.#runs;
    return async function* (filter, since, signal) {
      const position = since === undefined ? undefined : positionOf(since);
      if (since !== undefined && position === undefined) throw new BatonError(ErrorCode.invalid, `'since' must be a non-negative integer seq, got ${since}.`);
      // Runs that ended before this stream began, except the latest: their events are history, not this stream's.
      const skipped = new Set<string>();
      if (position === undefined) {
        const older = (await runs.recentRuns(threadId, RECENT_RUNS)).slice(1);
        for (const run of older) if (isFinalRunStatus(run.status)) skipped.add(run.run_id);
      }
      for await (const entry of log(position?.afterId ?? "-", signal)) {
        if (skipped.has(entry.run_id)) continue;
        // The entry the cursor points into gives events the client has had: only seqs after `since`.
        for (const event of protocolEvents(entry, Date.now())) if ((since === undefined || event.seq > since) && matchesFilter(filter, event)) yield event;
      }
    };
  }

  /**
   * One command: `run.start` creates a run on the thread (the thread is
   * created if it does not exist), `input.respond` resumes the thread's
   * interrupt(s) with a new run. Subscriptions are WebSocket commands
   * (src/http/protocol-socket.ts). A refusal of the command's own
   * arguments is a protocol error; access, a busy thread or a full queue
   * throw as for any run.
   */
  async command(ctx: RequestContext, threadId: string, command: ProtocolCommand): Promise<ProtocolResponse> {
    const params = command.params ?? {};
    switch (command.method) {
      case "run.start":
        return this.#runStart(ctx, threadId, command.id, params);
      case "input.respond":
        return this.#inputRespond(ctx, threadId, command.id, params);
      case "subscription.subscribe":
      case "subscription.unsubscribe":
        return protocolError(command.id, "not_supported", `${command.method} is a WebSocket command; over HTTP, open POST /threads/${threadId}/stream/events with the channels instead.`);
      case "state.get":
        return this.#stateGet(ctx, threadId, command.id, params);
      case "agent.getTree":
        return this.#getTree(ctx, threadId, command.id, params);
      default:
        return protocolError(
          command.id,
          "unknown_command",
          `Unknown command '${command.method.slice(0, 100)}': Baton accepts run.start, input.respond, state.get and agent.getTree (and subscription.subscribe/unsubscribe over WebSocket).`,
        );
    }
  }

  async #runStart(ctx: RequestContext, threadId: string, id: number, params: Record<string, unknown>): Promise<ProtocolResponse> {
    if (typeof params.assistant_id !== "string" || params.assistant_id === "") return protocolError(id, "invalid_argument", "run.start requires 'assistant_id' (a string).");
    const strategy = params.multitaskStrategy ?? params.multitask_strategy;
    if (strategy !== undefined && !STRATEGIES.includes(strategy as MultitaskStrategy)) {
      return protocolError(id, "invalid_argument", `'multitaskStrategy' must be one of ${STRATEGIES.join(", ")}.`);
    }
    for (const field of ["config", "metadata"] as const) {
      if (params[field] !== undefined && !isRecord(params[field])) return protocolError(id, "invalid_argument", `'${field}' must be an object.`);
    }
    const input = params.input ?? null;
    // As the official server: input given to a thread waiting at an interrupt resumes it (Command({resume: input})).
    const start = input !== null && (await this.#waitsAtInterrupt(ctx, threadId)) ? { input: null, command: { resume: input } } : { input, command: null };
    const run = await this.#runs.create(ctx, runInput(threadId, params.assistant_id, start, params, strategy as MultitaskStrategy | undefined));
    return { type: "success", id, result: { run_id: run.run_id }, meta: { thread_id: threadId } };
  }

  /**
   * Whether a task of the thread's state (subgraphs included) has a pending
   * interrupt: a thread a cancelled run left is not waiting, and plain
   * input goes to it as input. A thread that does not exist (yet) or that
   * the caller may not read is not waiting (the run's creation decides).
   */
  async #waitsAtInterrupt(ctx: RequestContext, threadId: string): Promise<boolean> {
    try {
      const state = await this.#threads.state(ctx, threadId, { subgraphs: true });
      const tasks = Array.isArray(state.tasks) ? (state.tasks as unknown[]) : [];
      return tasks.some((task) => isRecord(task) && Array.isArray(task.interrupts) && task.interrupts.length > 0);
    } catch (error) {
      if (error instanceof BatonError && error.code === ErrorCode.notFound) return false;
      throw error;
    }
  }

  /**
   * The thread's current values (only `keys`, when it is an array of
   * strings) and its checkpoint `{id, ns}`, as the official server answers
   * state.get; a thread with nothing saved has `{}` and no checkpoint. Only
   * the root namespace.
   */
  async #stateGet(ctx: RequestContext, threadId: string, id: number, params: Record<string, unknown>): Promise<ProtocolResponse> {
    // The official server answers the root's state whatever the namespace; a subgraph's asked for is refused instead.
    if (Array.isArray(params.namespace) && params.namespace.length > 0) {
      return protocolError(id, "not_supported", `state.get serves the root graph's state (namespace []); a subgraph's is in GET /threads/${threadId}/state?subgraphs=true, under its task.`);
    }
    const state = await this.#threads.state(ctx, threadId, {});
    const values = isRecord(state.values) ? state.values : {};
    const keys = Array.isArray(params.keys) && params.keys.every((key) => typeof key === "string") ? (params.keys) : undefined;
    const checkpoint = isRecord(state.checkpoint) && typeof state.checkpoint.checkpoint_id === "string" ? { id: state.checkpoint.checkpoint_id, ns: state.checkpoint.checkpoint_ns ?? "" } : undefined;
    return {
      type: "success",
      id,
      result: { values: keys === undefined ? values : Object.fromEntries(Object.entries(values).filter(([key]) => keys.includes(key))), ...(checkpoint !== undefined ? { checkpoint } : {}) },
      meta: { thread_id: threadId },
    };
  }

  /**
   * The tree of graphs of one run (`run_id`, else the thread's latest), as
   * its events in the thread's log show it (src/core/protocol.ts
   * `agentTree`). The log is read up to its newest entry when asked, so a
   * running run's tree is as of now. A run whose events are no longer kept
   * gives its root alone.
   */
  async #getTree(ctx: RequestContext, threadId: string, id: number, params: Record<string, unknown>): Promise<ProtocolResponse> {
    if (params.run_id !== undefined && typeof params.run_id !== "string") return protocolError(id, "invalid_argument", "'run_id' must be a string.");
    const log = await this.#runs.threadLog(ctx, threadId, { allowMissing: false });
    let run: Run | undefined;
    if (typeof params.run_id === "string") {
      try {
        run = await this.#runs.get(ctx, params.run_id, threadId);
      } catch (error) {
        if (error instanceof BatonError && error.code === ErrorCode.notFound) return protocolError(id, "no_such_run", `Run ${params.run_id.slice(0, 100)} is not a run of thread ${threadId}.`);
        throw error;
      }
    } else {
      [run] = await this.#runs.recentRuns(threadId, 1);
      if (run === undefined) return protocolError(id, "no_such_run", `Thread ${threadId} has no run yet; start one with run.start.`);
    }
    const entries: ThreadEvent[] = [];
    const head = await this.#runs.threadLogHead(threadId);
    if (head !== undefined) {
      // The log from its start to the head (or past it, should the head be trimmed meanwhile); the time limit
      // guards against a log deleted meanwhile, and the tree is then what was read. Only what the tree reads
      // is kept of each entry: the event's name, and the data of task results and of the run's end.
      for await (const entry of log("-", AbortSignal.timeout(TREE_READ_LIMIT_MS))) {
        if (entry.run_id === run.run_id) {
          const method = entry.event.split("|", 1)[0];
          entries.push(method === "tasks" || method === "__final__" ? entry : { ...entry, data: null });
        }
        if (atOrAfter(entry.id, head)) break;
      }
    }
    return { type: "success", id, result: { tree: agentTree(run.graph_id, run.status, entries) }, meta: { thread_id: threadId, run_id: run.run_id } };
  }

  async #inputRespond(ctx: RequestContext, threadId: string, id: number, params: Record<string, unknown>): Promise<ProtocolResponse> {
    const resume: Record<string, unknown> = {};
    if (Array.isArray(params.responses)) {
      for (const entry of params.responses) {
        if (!isRecord(entry) || typeof entry.interrupt_id !== "string") return protocolError(id, "invalid_argument", "Each of 'responses' needs an 'interrupt_id' (a string).");
        resume[entry.interrupt_id] = entry.response;
      }
    } else if (typeof params.interrupt_id === "string") {
      resume[params.interrupt_id] = params.response;
    }
    if (Object.keys(resume).length === 0) return protocolError(id, "invalid_argument", "input.respond requires 'interrupt_id' and 'response', or 'responses'.");
    // The thread's assistant is its latest run's (the caller may read the thread: threadLog asked).
    await this.#runs.threadLog(ctx, threadId, { allowMissing: false });
    const [latest] = await this.#runs.recentRuns(threadId, 1);
    if (latest === undefined) return protocolError(id, "no_such_run", `Thread ${threadId} has no run to resume; start one with run.start.`);
    // As the official server: only a thread waiting at an interrupt takes a response.
    if (!(await this.#waitsAtInterrupt(ctx, threadId))) {
      return protocolError(id, "invalid_argument", `Thread ${threadId} has no pending interrupt to respond to; input.respond answers one (see its input.requested events), run.start sends new input.`);
    }
    const command = { resume, ...(params.update !== undefined ? { update: params.update } : {}), ...(params.goto !== undefined ? { goto: params.goto } : {}) };
    const run = await this.#runs.create(ctx, runInput(threadId, latest.assistant_id, { input: null, command }, params, "enqueue"));
    // The official server answers {}; the resuming run's id goes in meta, beside the thread's.
    return { type: "success", id, result: {}, meta: { thread_id: threadId, run_id: run.run_id } };
  }
}

/** The run a protocol command asks for, as RunService takes it. */
function runInput(threadId: string, assistantId: string, start: { input: unknown; command: Record<string, unknown> | null }, params: Record<string, unknown>, strategy: MultitaskStrategy | undefined): CreateRunInput {
  return {
    thread_id: threadId,
    assistant_id: assistantId,
    metadata: isRecord(params.metadata) ? params.metadata : {},
    multitask_strategy: strategy ?? "enqueue",
    if_not_exists: "create",
    after_seconds: 0,
    kwargs: {
      input: start.input,
      command: start.command,
      config: isRecord(params.config) ? params.config : {},
      context: isRecord(params.context) ? params.context : null,
      stream_mode: PROTOCOL_RUN_MODES,
      stream_subgraphs: true,
      stream_resumable: false,
      interrupt_before: null,
      interrupt_after: null,
      checkpoint_id: null,
      checkpoint: null,
      webhook: null,
      on_completion: "keep",
      durability: null,
      on_disconnect: "continue",
      protocol: true,
    },
  };
}
