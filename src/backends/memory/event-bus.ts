/**
 * In-process event bus for embedded mode: one ordered buffer per run, read by
 * any number of subscribers, each with its own cursor (C8). A buffer lives as
 * long as its run and its readers, so late joiners and `Last-Event-ID`
 * reconnects get exactly the rest; after the end it is kept for the `retainMs`
 * given to `end` (resumable runs) and otherwise freed once read.
 *
 * Event ids are `<epoch ms>-<n>`, strictly increasing within a run, as Redis
 * Streams ids are: ids of a later attempt (after a restart) sort after every
 * id a client saw from an earlier one, so a reconnect never skips events.
 *
 * Each thread also has a log (thread streams): the events of its runs that
 * were published with the thread's id, with ids of its own, at most
 * `threadMaxEvents` of them (the oldest are dropped), freed once nobody reads
 * it and nothing was appended for `threadRetentionMs`.
 */
import type { EventBus } from "../../core/ports.ts";
import type { CancelAction, RunEvent, ThreadEvent } from "../../core/types.ts";

interface RunStream {
  events: (RunEvent & { key: EventKey })[];
  last: EventKey;
  /** Subscribers reading now; events are freed only when none is. */
  readers: number;
  /** Free the events once the last reader leaves (an ended, non-retained stream). */
  dropWhenIdle: boolean;
  ended: boolean;
  /** Resolvers of subscribers waiting for the next event. */
  waiters: Set<() => void>;
  expiry: NodeJS.Timeout | undefined;
  /** The latest attempt that published; earlier attempts' events are dropped. */
  attempt: number;
}

type EventKey = [ms: number, seq: number];

interface ThreadLog {
  events: (ThreadEvent & { key: EventKey })[];
  /** How many events were dropped from the front: an event's position is `dropped + index`. */
  dropped: number;
  last: EventKey;
  readers: number;
  waiters: Set<() => void>;
  lastAppendMs: number;
  expiry: NodeJS.Timeout | undefined;
}

/** The key after `last`, at `now`: `<ms>-0`, or the next sequence number within the same (or an earlier) millisecond. */
const nextKey = (last: EventKey, now: number): EventKey => (now > last[0] ? [now, 0] : [last[0], last[1] + 1]);

const compareKeys = (a: EventKey, b: EventKey): number => a[0] - b[0] || a[1] - b[1];

/** `<ms>-<n>` (or a bare `<ms>`) to a key; null for none, "-" or garbage (replay from the start). */
function parseEventId(id: string | undefined): EventKey | null {
  const match = id === undefined ? null : /^(\d+)(?:-(\d+))?$/.exec(id.trim());
  return match === null ? null : [Number(match[1]), Number(match[2] ?? 0)];
}

export interface MemoryEventBusOptions {
  /** How long a finished run's ended marker stays known (its events go with `end`'s retainMs). */
  endedMarkerMs?: number;
  /** Events a thread's log keeps at most (default 10,000). */
  threadMaxEvents?: number;
  /** How long a thread's log is kept after its last event while nobody reads it (default 5 minutes). */
  threadRetentionMs?: number;
}

export class MemoryEventBus implements EventBus {
  readonly #streams = new Map<string, RunStream>();
  readonly #cancelListeners = new Set<(runId: string, action: CancelAction) => void>();
  readonly #workListeners = new Set<() => void>();
  readonly #endedMarkerMs: number;
  readonly #threads = new Map<string, ThreadLog>();
  readonly #threadMaxEvents: number;
  readonly #threadRetentionMs: number;

  constructor(options: MemoryEventBusOptions = {}) {
    this.#endedMarkerMs = options.endedMarkerMs ?? 60_000;
    this.#threadMaxEvents = Math.max(1, options.threadMaxEvents ?? 10_000);
    this.#threadRetentionMs = options.threadRetentionMs ?? 300_000;
  }

  #stream(runId: string): RunStream {
    let stream = this.#streams.get(runId);
    if (stream === undefined) {
      stream = { events: [], last: [0, 0], readers: 0, dropWhenIdle: false, ended: false, waiters: new Set(), expiry: undefined, attempt: 0 };
      this.#streams.set(runId, stream);
    }
    return stream;
  }

  publish(runId: string, event: string, data: unknown, attempt?: number, threadId?: string): void {
    const stream = this.#stream(runId);
    // Ended is final (every caller of `end` closes the run for good): a late
    // event of a stale attempt must not reopen the stream.
    if (stream.ended) return;
    if (attempt !== undefined) {
      if (attempt < stream.attempt) return;
      stream.attempt = attempt;
    }
    const now = Date.now();
    const key = nextKey(stream.last, now);
    stream.last = key;
    const id = `${key[0]}-${key[1]}`;
    stream.events.push({ id, event, data, key });
    this.#wake(stream);
    if (threadId !== undefined) this.#append(threadId, runId, event, data, now);
  }

  #threadLog(threadId: string): ThreadLog {
    let log = this.#threads.get(threadId);
    if (log === undefined) {
      log = { events: [], dropped: 0, last: [0, 0], readers: 0, waiters: new Set(), lastAppendMs: Date.now(), expiry: undefined };
      this.#threads.set(threadId, log);
      this.#scheduleExpiry(threadId, log, this.#threadRetentionMs);
    }
    return log;
  }

  /** Frees the log once it is unread and quiet for the retention; one timer per log, moved on as needed. */
  #scheduleExpiry(threadId: string, log: ThreadLog, delayMs: number): void {
    log.expiry = setTimeout(() => {
      const quietMs = Date.now() - log.lastAppendMs;
      if (log.readers === 0 && quietMs >= this.#threadRetentionMs) this.#threads.delete(threadId);
      else this.#scheduleExpiry(threadId, log, Math.max(1_000, this.#threadRetentionMs - quietMs));
    }, delayMs);
    log.expiry.unref();
  }

  #append(threadId: string, runId: string, event: string, data: unknown, now: number): void {
    const log = this.#threadLog(threadId);
    const key = nextKey(log.last, now);
    log.last = key;
    log.lastAppendMs = now;
    log.events.push({ id: `${key[0]}-${key[1]}`, event, data, run_id: runId, key });
    // Trim in batches, so a full log does not shift its array on every event.
    const excess = log.events.length - this.#threadMaxEvents;
    if (excess >= Math.max(1, Math.ceil(this.#threadMaxEvents / 16))) {
      log.events.splice(0, excess);
      log.dropped += excess;
    }
    this.#wake(log);
  }

  threadLogHead(threadId: string): Promise<string | undefined> {
    return Promise.resolve(this.#threads.get(threadId)?.events.at(-1)?.id);
  }

  async *subscribeThread(threadId: string, afterId: string | undefined, signal: AbortSignal): AsyncIterable<ThreadEvent> {
    const log = this.#threadLog(threadId);
    let position = log.dropped + log.events.length;
    if (afterId !== undefined) {
      const after = parseEventId(afterId);
      const index = after === null ? 0 : log.events.findIndex((e) => compareKeys(e.key, after) > 0);
      if (index >= 0) position = log.dropped + index;
      // Events after the client's last one may have been dropped already.
      if (index === 0 && log.dropped > 0) yield truncated(threadId, afterId.trim());
    }
    let lastId = afterId?.trim() ?? "-";
    log.readers += 1;
    try {
      while (!signal.aborted && this.#threads.get(threadId) === log) {
        if (position < log.dropped) {
          // A reader slower than the log's bound: it is told, and goes on from the oldest kept.
          yield truncated(threadId, lastId);
          position = log.dropped;
        }
        while (position - log.dropped < log.events.length) {
          const { id, event, data, run_id } = log.events[position - log.dropped]!;
          position += 1;
          lastId = id;
          yield { id, event, data, run_id };
          if (signal.aborted) return;
        }
        await this.#nextEvent(log, signal);
      }
    } finally {
      log.readers -= 1;
    }
  }

  #nextEvent(waitable: { waiters: Set<() => void> }, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const onAbort = () => {
        waitable.waiters.delete(wake);
        resolve();
      };
      const wake = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      waitable.waiters.add(wake);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  end(runId: string, retainMs: number): void {
    const stream = this.#stream(runId);
    stream.ended = true;
    this.#wake(stream);
    if (retainMs <= 0) {
      stream.dropWhenIdle = true;
      if (stream.readers === 0) stream.events = [];
    }
    // The ended marker itself (a few hundred bytes) is kept a while, so that a
    // joiner arriving just after the end is told so instead of waiting forever.
    clearTimeout(stream.expiry);
    stream.expiry = setTimeout(() => this.#streams.delete(runId), Math.max(retainMs, this.#endedMarkerMs));
    stream.expiry.unref();
  }

  async has(runId: string): Promise<boolean> {
    return this.#streams.has(runId);
  }

  /** In one process nothing is lost between publisher and subscriber. */
  healthy(): boolean {
    return true;
  }

  #wake(stream: { waiters: Set<() => void> }): void {
    const waiters = [...stream.waiters];
    stream.waiters.clear();
    for (const wake of waiters) wake();
  }

  async *subscribe(runId: string, afterId: string | undefined, signal: AbortSignal): AsyncIterable<RunEvent> {
    const stream = this.#stream(runId);
    const after = parseEventId(afterId);
    let cursor = after === null ? 0 : stream.events.findIndex((e) => compareKeys(e.key, after) > 0);
    if (cursor < 0) cursor = stream.events.length;
    stream.readers += 1;
    try {
      yield* this.#read(stream, cursor, signal);
    } finally {
      stream.readers -= 1;
      if (stream.readers === 0 && stream.dropWhenIdle) stream.events = [];
    }
  }

  async *#read(stream: RunStream, start: number, signal: AbortSignal): AsyncIterable<RunEvent> {
    let cursor = start;
    while (!signal.aborted) {
      while (cursor < stream.events.length) {
        const { id, event, data } = stream.events[cursor]!;
        yield { id, event, data };
        cursor += 1;
        if (signal.aborted) return;
      }
      if (stream.ended) return;
      await this.#nextEvent(stream, signal);
    }
  }

  signalCancel(runId: string, action: CancelAction): void {
    for (const listener of this.#cancelListeners) listener(runId, action);
  }

  onCancel(listener: (runId: string, action: CancelAction) => void): () => void {
    this.#cancelListeners.add(listener);
    return () => this.#cancelListeners.delete(listener);
  }

  signalWork(): void {
    for (const listener of this.#workListeners) listener();
  }

  onWork(listener: () => void): () => void {
    this.#workListeners.add(listener);
    return () => this.#workListeners.delete(listener);
  }

  async close(): Promise<void> {
    for (const stream of this.#streams.values()) {
      clearTimeout(stream.expiry);
      stream.ended = true;
      this.#wake(stream);
    }
    this.#streams.clear();
    for (const log of this.#threads.values()) {
      clearTimeout(log.expiry);
      this.#wake(log);
    }
    this.#threads.clear();
  }
}

/** What a thread stream reader gets first when events it should have had were dropped (the log's bound). */
function truncated(threadId: string, id: string): ThreadEvent {
  return {
    id,
    event: "error",
    run_id: "",
    data: { error: "StreamTruncated", message: `The oldest events of thread ${threadId}'s stream were dropped (the log's bound); some events are missing.` },
  };
}
