/**
 * Agent Protocol v2 events (what the SDK's `client.threads.stream()` and
 * `useStream()` read from `/threads/{id}/stream/events`), made from the
 * thread's log in the event bus (src/core/thread-stream.ts), so a cursor is
 * durable and the same in every API process.
 *
 * - `seq` is derived from the log entry's id (`<ms>-<n>`): a client's
 *   `since` is turned back into the log position, so a reconnect on any
 *   process gets exactly the events after it (C8). One log entry may give
 *   several protocol events (an interrupt and the values around it); each
 *   gets its own `seq` (see `seqOf`).
 * - Translation (where the contract leaves it to the server): a run's
 *   `metadata` event is the root `lifecycle` `started`; its final event the
 *   root `lifecycle` `completed`, `failed` or `interrupted`; `values`,
 *   `updates` (one event per node, with `node`), `custom` (`{payload}`) and
 *   `tasks` become their channels, with the namespace from the event name
 *   (`values|a:1` is namespace `["a:1"]`); interrupts in `values` become
 *   `input.requested` events (`{interrupt_id, payload}`) and leave the
 *   values. A protocol run's `protocol.messages`, `protocol.tools` and
 *   `protocol.checkpoints` (LangGraph's own protocol form, see
 *   src/core/executor.ts) become the `messages` (with `node`), `tools` and
 *   `checkpoints` channels. Legacy `messages`
 *   chunks, `events`, `debug` and `checkpoints` have no protocol form here
 *   and are not sent (docs/streaming.md).
 */
import { isFinalRunStatus, type RunStatus, type ThreadEvent } from "./types.ts";

export const PROTOCOL_CHANNELS = ["values", "updates", "messages", "tools", "lifecycle", "input", "checkpoints", "tasks", "custom"] as const;

/** A server to client event of the protocol. */
export interface ProtocolEvent {
  type: "event";
  event_id: string;
  seq: number;
  method: string;
  params: { namespace: string[]; timestamp: number; data: unknown; node?: string };
}

/** Which events a stream or a subscription wants (the contract's ProtocolEventStreamRequest, without `since`). */
export interface ProtocolFilter {
  channels: readonly string[];
  namespaces?: readonly (readonly string[])[] | undefined;
  depth?: number | undefined;
}

/**
 * The origin of `seq` milliseconds (2023-11-14): with 14 bits below the
 * millisecond, seq stays an exact JavaScript integer until about 2040.
 */
const SEQ_EPOCH_MS = 1_700_000_000_000;
/** Log entries of one thread within one millisecond that get distinct seqs. */
const ENTRIES_PER_MS = 2048;
/** Protocol events one log entry may give. */
const EVENTS_PER_ENTRY = 8;

/** The seq of the `index`-th protocol event made from the log entry `id`; undefined for an id that is not `<ms>-<n>` or out of range. */
export function seqOf(id: string, index: number): number | undefined {
  const match = /^(\d+)-(\d+)$/.exec(id);
  if (match === null || index >= EVENTS_PER_ENTRY) return undefined;
  const ms = Number(match[1]) - SEQ_EPOCH_MS;
  const n = Number(match[2]);
  if (ms < 0 || n >= ENTRIES_PER_MS) return undefined;
  return (ms * ENTRIES_PER_MS + n) * EVENTS_PER_ENTRY + index;
}

/** The log position of a client's `since`: the id of the entry before the one it is in (that entry's events after `since` are still due). */
export function positionOf(since: number): { afterId: string } | undefined {
  if (!Number.isSafeInteger(since) || since < 0) return undefined;
  const entry = Math.floor(since / EVENTS_PER_ENTRY);
  const ms = Math.floor(entry / ENTRIES_PER_MS) + SEQ_EPOCH_MS;
  const n = entry % ENTRIES_PER_MS;
  return { afterId: n > 0 ? `${ms}-${n - 1}` : `${ms - 1}-${Number.MAX_SAFE_INTEGER}` };
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** `values|a:1|b:2` → method `values`, namespace `["a:1", "b:2"]`. */
function parseEventName(name: string): { method: string; namespace: string[] } {
  const [method = "", ...namespace] = name.split("|");
  return { method, namespace };
}

/** The root lifecycle a run's final status means. */
function terminalLifecycle(status: RunStatus | "rolled_back" | undefined, output: unknown): string {
  if (status === "error" || status === "timeout") return "failed";
  if (status === "interrupted" || status === "rolled_back") return "interrupted";
  // A run that stopped at a human interrupt ends as `success` with the interrupt in its output.
  if (isRecord(output) && Array.isArray(output.__interrupt__) && output.__interrupt__.length > 0) return "interrupted";
  return "completed";
}

/** `{interrupt_id, payload}` for each interrupt of a `values` payload's `__interrupt__`. */
function inputRequests(values: Record<string, unknown>): { interrupt_id: string; payload: unknown }[] {
  const interrupts = Array.isArray(values.__interrupt__) ? values.__interrupt__ : [];
  return interrupts.flatMap((entry: unknown) => (isRecord(entry) && typeof entry.id === "string" ? [{ interrupt_id: entry.id, payload: entry.value }] : []));
}

/** A protocol run's message event (`[event, {langgraph_node, run_id}]`): the event with the model call's run id, from its node. */
function messagesEvent(data: unknown, namespace: string[]): [string, string[], unknown, string?][] {
  if (!Array.isArray(data) || !isRecord(data[0]) || typeof data[0].event !== "string") return [];
  const meta = isRecord(data[1]) ? data[1] : {};
  const event = typeof meta.run_id === "string" ? { ...data[0], run_id: meta.run_id } : data[0];
  return [["messages", namespace, event, typeof meta.langgraph_node === "string" ? meta.langgraph_node : undefined]];
}

/** LangGraph's tool event (`on_tool_start`, `on_tool_event`, `on_tool_end`, `on_tool_error`) as the protocol's tools event. */
function toolsEvent(data: Record<string, unknown>): Record<string, unknown> {
  const tool_call_id = typeof data.toolCallId === "string" ? data.toolCallId : typeof data.tool_call_id === "string" ? data.tool_call_id : "";
  switch (data.event) {
    case "on_tool_start":
      return { event: "tool-started", tool_call_id, tool_name: typeof data.name === "string" ? data.name : "tool", input: data.input };
    case "on_tool_end":
      return { event: "tool-finished", tool_call_id, output: data.output };
    case "on_tool_error":
      return { event: "tool-error", tool_call_id, message: typeof data.error === "string" ? data.error : JSON.stringify(data.error) };
    default:
      return { event: "tool-output-delta", tool_call_id, delta: typeof data.data === "string" ? data.data : JSON.stringify(data.data ?? null) };
  }
}

/** What one log entry means on the protocol's channels: [method, namespace, data, node?] for each event, in order. */
function translate(entry: ThreadEvent): [string, string[], unknown, string?][] {
  const { method, namespace } = parseEventName(entry.event);
  switch (method) {
    case "metadata":
      return [["lifecycle", [], { event: "started", run_id: entry.run_id }]];
    case "__final__": {
      const final = isRecord(entry.data) ? entry.data : {};
      const event = terminalLifecycle(final.status as RunStatus | undefined, final.output);
      const failure = isRecord(final.output) && isRecord(final.output.__error__) ? final.output.__error__ : undefined;
      return [["lifecycle", [], { event, run_id: entry.run_id, ...(event === "failed" && failure !== undefined ? { error: failure.message } : {}) }]];
    }
    case "values": {
      if (!isRecord(entry.data)) return [["values", namespace, entry.data]];
      const { __interrupt__: _interrupts, ...values } = entry.data;
      const requests = inputRequests(entry.data).map((request): [string, string[], unknown] => ["input.requested", namespace, request]);
      return Object.keys(values).length > 0 ? [...requests, ["values", namespace, values]] : requests;
    }
    case "updates":
      if (!isRecord(entry.data)) return [];
      return Object.entries(entry.data).flatMap(([node, update]): [string, string[], unknown, string?][] =>
        // A node's update is an object on the protocol; anything else is wrapped as {value}.
        node === "__interrupt__" ? [] : [["updates", namespace, isRecord(update) ? update : { value: update }, node]],
      );
    case "custom":
      return [["custom", namespace, { payload: entry.data }]];
    case "tasks":
      return [["tasks", namespace, entry.data]];
    case "protocol.messages":
      return messagesEvent(entry.data, namespace);
    case "protocol.checkpoints":
      return [["checkpoints", namespace, entry.data]];
    case "protocol.tools":
      return isRecord(entry.data) ? [["tools", namespace, toolsEvent(entry.data)]] : [];
    default:
      return [];
  }
}

/** The protocol events of one log entry, each with its seq (none for an entry whose id has no seq). */
export function protocolEvents(entry: ThreadEvent, nowMs: number): ProtocolEvent[] {
  return translate(entry).flatMap(([method, namespace, data, node], index) => {
    const seq = seqOf(entry.id, index);
    if (seq === undefined) return [];
    return [{ type: "event" as const, event_id: String(seq), seq, method, params: { namespace, timestamp: nowMs, data, ...(node !== undefined ? { node } : {}) } }];
  });
}

/** Whether `filter` wants `event`: its channel (`input` for `input.requested`, `custom:<name>` for a named custom event), and a namespace under one of the prefixes within `depth`. */
export function matchesFilter(filter: ProtocolFilter, event: ProtocolEvent): boolean {
  const channel = event.method === "input.requested" ? "input" : event.method;
  const name = channel === "custom" && isRecord(event.params.data) ? event.params.data.name : undefined;
  const channelWanted = filter.channels.includes(channel) || (typeof name === "string" && filter.channels.includes(`custom:${name}`));
  if (!channelWanted) return false;
  if (filter.namespaces === undefined || filter.namespaces.length === 0) return true;
  const namespace = event.params.namespace;
  return filter.namespaces.some(
    (prefix) => prefix.length <= namespace.length && prefix.every((segment, i) => namespace[i] === segment) && (filter.depth === undefined || namespace.length - prefix.length <= filter.depth),
  );
}

/** Whether a channel name is one the protocol knows (the nine, or `custom:<name>`). */
export function isProtocolChannel(channel: string): boolean {
  return (PROTOCOL_CHANNELS as readonly string[]).includes(channel) || /^custom:.+$/.test(channel);
}


/** A node of `agent.getTree`'s answer: a graph or subgraph of one run, by namespace. */
export interface AgentTreeNode {
  namespace: string[];
  /** `running` or `started` while it goes on; `completed`, `failed` or `interrupted` once it ended. */
  status: string;
  graph_name: string;
  children?: AgentTreeNode[];
}

/** `child:1a2b` → `child`: a subgraph's node name, as its namespace segment starts. */
const graphNameOf = (segment: string) => segment.split(":")[0] ?? segment;

/**
 * `agent.getTree` for one run, from its entries in the thread's log: the
 * root graph (named `graphName`) with its lifecycle status, and every
 * subgraph namespace its events named, nested by namespace. A subgraph is
 * `started` once seen; it ended as its task's result in the parent
 * namespace's `tasks` events says (an error: `failed`, interrupts:
 * `interrupted`, else `completed`), or as the root ended once it has.
 */
export function agentTree(graphName: string, runStatus: RunStatus, entries: readonly ThreadEvent[]): AgentTreeNode {
  let root = isFinalRunStatus(runStatus) ? terminalLifecycle(runStatus, null) : "running";
  const seen = new Map<string, string[]>();
  const ended = new Map<string, string>();
  for (const entry of entries) {
    const { method, namespace } = parseEventName(entry.event);
    if (method === "__final__") {
      const final = isRecord(entry.data) ? entry.data : {};
      root = terminalLifecycle(final.status as RunStatus | undefined, final.output);
      continue;
    }
    for (let length = 1; length <= namespace.length; length += 1) seen.set(JSON.stringify(namespace.slice(0, length)), namespace.slice(0, length));
    const task = isRecord(entry.data) ? entry.data : undefined;
    if (method === "tasks" && task !== undefined && typeof task.id === "string" && typeof task.name === "string" && ("result" in task || "error" in task)) {
      const status = task.error !== null && task.error !== undefined ? "failed" : Array.isArray(task.interrupts) && task.interrupts.length > 0 ? "interrupted" : "completed";
      ended.set(JSON.stringify([...namespace, `${task.name}:${task.id}`]), status);
    }
  }
  const node = (namespace: string[]): AgentTreeNode => {
    const children = [...seen.values()]
      .filter((candidate) => candidate.length === namespace.length + 1 && namespace.every((segment, i) => candidate[i] === segment))
      .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
      .map(node);
    // Once the root has ended, what did not say it ended takes the root's end, as the official server cascades it.
    const status = namespace.length === 0 ? root : (ended.get(JSON.stringify(namespace)) ?? (root === "running" ? "started" : root));
    return { namespace, status, graph_name: namespace.length === 0 ? graphName : graphNameOf(namespace.at(-1)!), ...(children.length > 0 ? { children } : {}) };
  };
  return node([]);
}

/** Whether log entry id `id` (`<ms>-<n>`) is at or after `head`; false when either is not such an id. */
export function atOrAfter(id: string, head: string): boolean {
  const a = /^(\d+)-(\d+)$/.exec(id);
  const b = /^(\d+)-(\d+)$/.exec(head);
  if (a === null || b === null) return false;
  const ms = Number(a[1]) - Number(b[1]);
  return ms > 0 || (ms === 0 && Number(a[2]) >= Number(b[2]));
}
