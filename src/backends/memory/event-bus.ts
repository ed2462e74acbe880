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
 */
import type { EventBus } from "../../core/ports.ts";
import type { CancelAction, RunEvent } from "../../core/types.ts";

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

const compareKeys = (a: EventKey, b: EventKey): number => a[0] - b[0] || a[1] - b[1];

/** `<ms>-<n>` (or a bare `<ms>`) to a key; null for none, "-" or garbage (replay from the start). */
function parseEventId(id: string | undefined): EventKey | null {
  const match = id === undefined ? null : /^(\d+)(?:-(\d+))?$/.exec(id.trim());
  return match === null ? null : [Number(match[1]), Number(match[2] ?? 0)];
}

export interface MemoryEventBusOptions {
  /** How long a finished run's ended marker stays known (its events go with `end`'s retainMs). */
  endedMarkerMs?: number;
}

export class MemoryEventBus implements EventBus {
  readonly #streams = new Map<string, RunStream>();
  readonly #cancelListeners = new Set<(runId: string, action: CancelAction) => void>();
  readonly #workListeners = new Set<() => void>();
  readonly #endedMarkerMs: number;

  constructor(options: MemoryEventBusOptions = {}) {
    this.#endedMarkerMs = options.endedMarkerMs ?? 60_000;
  }

  #stream(runId: string): RunStream {
    let stream = this.#streams.get(runId);
    if (stream === undefined) {
      stream = { events: [], last: [0, 0], readers: 0, dropWhenIdle: false, ended: false, waiters: new Set(), expiry: undefined, attempt: 0 };
      this.#streams.set(runId, stream);
    }
    return stream;
  }

  publish(runId: string, event: string, data: unknown, attempt?: number): void {
    const stream = this.#stream(runId);
    // Ended is final (every caller of `end` closes the run for good): a late
    // event of a stale attempt must not reopen the stream.
    if (stream.ended) return;
    if (attempt !== undefined) {
      if (attempt < stream.attempt) return;
      stream.attempt = attempt;
    }
    const now = Date.now();
    const key: EventKey = now > stream.last[0] ? [now, 0] : [stream.last[0], stream.last[1] + 1];
    stream.last = key;
    const id = `${key[0]}-${key[1]}`;
    stream.events.push({ id, event, data, key });
    this.#wake(stream);
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

  #wake(stream: RunStream): void {
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
      await new Promise<void>((resolve) => {
        const onAbort = () => {
          stream.waiters.delete(wake);
          resolve();
        };
        const wake = () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
        stream.waiters.add(wake);
        signal.addEventListener("abort", onAbort, { once: true });
      });
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
  }
}
