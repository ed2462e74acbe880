/**
 * Long responses: server-sent events for streams, and JSON for `wait`/`join`
 * that may take minutes. Both send keep-alive bytes while nothing else is
 * written (so proxies and the SDK's idle detection see a live connection) and
 * notice when the client goes away.
 *
 * Backpressure: a response holds the bytes its client has not taken yet in a
 * buffer of its own, handed to the connection only as fast as the connection
 * accepts them (a pull source). A stream stops reading its run's events while
 * that buffer is full (`bufferBytes`), so a reader that falls behind costs at
 * most that much, and the events it has not read stay where they already are
 * (the event bus). A stream reader whose buffer is full and that takes nothing
 * for a whole keep-alive interval is dropped: its response ends, the buffer is
 * released and `stream:reader-dropped` is logged; its client may resume with
 * `Last-Event-ID` (resumable runs). Dropping is not a disconnect: a run created
 * with `on_disconnect: "cancel"` goes on.
 *
 * The limit and the logger come from the server (server.ts runs each request
 * it serves inside `streamPolicy`), or from the options of one response.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Logger } from "../core/logger.ts";
import type { RunEvent } from "../core/types.ts";

const encoder = new TextEncoder();

/**
 * Bytes handed to the connection at a time: a large event goes in pieces, so
 * a reader on a slow link shows progress (and is not taken for a stalled one)
 * while one event is on its way.
 */
const HAND_BYTES = 64 * 1024;

/** The default of `streamBufferBytes` (docs/configuration.md). */
export const DEFAULT_STREAM_BUFFER_BYTES = 16 * 1024 * 1024;

/** Bytes waiting in the buffers of this server's long responses (their clients have not taken them yet). */
export class StreamStats {
  /** Long responses open now. */
  open = 0;
  /** Bytes waiting in their buffers now. */
  bufferedBytes = 0;
  /** Stream readers dropped since start. */
  dropped = 0;
}

/** What one server lets a long response hold, and where it says so. */
export interface StreamPolicy {
  /** Bytes of events a stream reader may have waiting; see the module comment. */
  bufferBytes: number;
  logger?: Logger | undefined;
  stats?: StreamStats | undefined;
  /** The request's connection, cut when its reader is dropped (a stalled client would never read the error). */
  connection?: { destroy(): unknown } | undefined;
}

/** The policy of the server serving the current request (set by server.ts around each request). */
export const streamPolicy = new AsyncLocalStorage<StreamPolicy>();

export const frame = (event: RunEvent): string =>
  `event: ${event.event}\ndata: ${JSON.stringify(event.data ?? null)}\nid: ${event.id}\n\n`;

export interface LongResponseOptions {
  keepAliveMs: number;
  headers?: Record<string, string>;
  /** Called once when the client disconnects before the body ended (not when a slow reader is dropped). */
  onDisconnect?: (() => void) | undefined;
  /** Overrides the server's `streamBufferBytes` for this response. */
  bufferBytes?: number | undefined;
  /** The run streamed, for the log line of a dropped reader. */
  runId?: string | undefined;
}

/**
 * Writes one piece of the body; false when the buffer is full (the producer
 * should await `drained()` before it writes more).
 */
type Write = (text: string) => boolean;

/**
 * A streaming response whose body `produce` writes; `heartbeat` is written
 * whenever nothing else was for `keepAliveMs`. The signal aborts when the
 * client disconnects or is dropped. If `produce` throws while the client is
 * still there, `onError` writes the last words. `dropStalled`: drop a reader
 * whose full buffer it does not take from for a keep-alive interval.
 */
function longResponse(
  request: Request,
  init: { contentType: string; heartbeat: string; onError: (message: string) => string; dropStalled: boolean },
  options: LongResponseOptions,
  produce: (write: Write, drained: () => Promise<void>, signal: AbortSignal) => Promise<void>,
): Response {
  const policy = streamPolicy.getStore();
  const limit = options.bufferBytes ?? policy?.bufferBytes ?? DEFAULT_STREAM_BUFFER_BYTES;
  const stats = policy?.stats;
  const controller = new AbortController();
  /** Bytes written and not yet handed to the connection. */
  const chunks: Uint8Array[] = [];
  let buffered = 0;
  /** Bytes handed to the connection so far. */
  let taken = 0;
  let sink: ReadableStreamDefaultController<Uint8Array> | undefined;
  /** The connection asked for bytes and got none (the next write goes straight to it). */
  let wanted = false;
  /** The producer is done: the body ends once the buffer is taken. */
  let produced = false;
  /** Produced normally (or failed with last words): a later disconnect is not the client leaving early. */
  let finished = false;
  /** The response is over (closed, dropped, or its client left); nothing is buffered any more. */
  let over = false;
  let room: (() => void) | undefined;
  let keepAlive: NodeJS.Timeout | undefined;
  let lastWrite = Date.now();
  if (stats) stats.open += 1;

  const unbuffer = (bytes: number) => {
    buffered -= bytes;
    if (stats) stats.bufferedBytes -= bytes;
  };
  const wakeProducer = () => {
    const wake = room;
    room = undefined;
    wake?.();
  };
  /** Ends the response's bookkeeping: frees the buffer, stops the timer and the producer. */
  const finish = () => {
    if (over) return;
    over = true;
    clearInterval(keepAlive);
    request.signal.removeEventListener("abort", disconnect);
    chunks.length = 0;
    unbuffer(buffered);
    if (stats) stats.open -= 1;
    controller.abort();
    wakeProducer();
  };
  function disconnect() {
    const early = !finished;
    finished = true;
    finish();
    if (early) options.onDisconnect?.();
  }
  request.signal.addEventListener("abort", disconnect, { once: true });

  /** Hands the next buffered piece to the connection, or ends the body when all is taken. */
  const hand = (to: ReadableStreamDefaultController<Uint8Array>) => {
    let chunk = chunks.shift();
    if (chunk !== undefined && chunk.byteLength > HAND_BYTES) {
      chunks.unshift(chunk.subarray(HAND_BYTES));
      chunk = chunk.subarray(0, HAND_BYTES);
    }
    if (chunk !== undefined) {
      unbuffer(chunk.byteLength);
      taken += chunk.byteLength;
      to.enqueue(chunk);
      if (buffered < limit) wakeProducer();
      return;
    }
    if (produced) {
      finish();
      to.close();
      return;
    }
    wanted = true;
  };

  const write: Write = (text) => {
    if (over) return true;
    const bytes = encoder.encode(text);
    lastWrite = Date.now();
    chunks.push(bytes);
    buffered += bytes.byteLength;
    if (stats) stats.bufferedBytes += bytes.byteLength;
    if (wanted && sink !== undefined) {
      wanted = false;
      hand(sink);
    }
    return buffered < limit;
  };
  const drained = () =>
    over || buffered < limit
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          room = resolve;
        });

  const drop = () => {
    const bytes = buffered;
    finished = true;
    finish();
    if (stats) stats.dropped += 1;
    policy?.logger?.warn("stream:reader-dropped", { run_id: options.runId, bytes, limit_bytes: limit });
    // The connection is cut, so the client sees a broken stream, not an end (which would say the run is over).
    // Without one (a request made in process), the body errors.
    if (policy?.connection !== undefined) {
      policy.connection.destroy();
      sink?.close();
    } else {
      sink?.error(new Error(`Stream reader dropped: ${bytes} bytes waiting, limit ${limit}.`));
    }
  };

  const stream = new ReadableStream<Uint8Array>(
    {
      start(to) {
        sink = to;
        let takenAtTick = taken;
        keepAlive = setInterval(() => {
          if (over) return;
          const stalled = taken === takenAtTick;
          takenAtTick = taken;
          if (buffered >= limit) {
            if (stalled && init.dropStalled) drop();
            return;
          }
          // Bytes still waiting keep the connection busy enough; a heartbeat only for an idle one.
          if (!produced && buffered === 0 && Date.now() - lastWrite >= options.keepAliveMs - 5) write(init.heartbeat);
        }, options.keepAliveMs);
        void (async () => {
          try {
            await produce(write, drained, controller.signal);
            finished = true;
          } catch (error) {
            if (!controller.signal.aborted) {
              finished = true;
              write(init.onError(error instanceof Error ? error.message : String(error)));
            }
          }
          produced = true;
          if (wanted && !over) {
            wanted = false;
            hand(to);
          }
        })();
      },
      pull(to) {
        if (!over) hand(to);
      },
      cancel() {
        disconnect();
      },
    },
    // Nothing waits inside the stream itself: every byte not yet taken is in `chunks`, counted.
    { highWaterMark: 0 },
  );
  return new Response(stream, { headers: { "Content-Type": init.contentType, "Cache-Control": "no-cache", ...options.headers } });
}

/** Streams `events(signal)` as SSE, skipping internal events (names starting with "__"). */
export function sseResponse(request: Request, events: (signal: AbortSignal) => AsyncIterable<RunEvent>, options: LongResponseOptions): Response {
  return longResponse(
    request,
    {
      contentType: "text/event-stream",
      heartbeat: ": heartbeat\n\n",
      onError: (message) => frame({ id: "0", event: "error", data: { error: "StreamError", message } }),
      dropStalled: true,
    },
    { ...options, headers: { Connection: "keep-alive", "X-Accel-Buffering": "no", ...options.headers } },
    async (write, drained, signal) => {
      for await (const event of events(signal)) {
        if (event.event.startsWith("__")) continue;
        // A full buffer: read no further from the bus until the client takes some (or is dropped).
        if (!write(frame(event))) await drained();
        if (signal.aborted) return;
      }
    },
  );
}

/**
 * Answers 200 at once and writes `value(signal)` as JSON when it resolves,
 * with newlines (valid leading JSON whitespace) as keep-alives meanwhile.
 * One value, written once: its reader is never dropped.
 */
export function jsonWhenReady(request: Request, value: (signal: AbortSignal) => Promise<unknown>, options: LongResponseOptions): Response {
  return longResponse(
    request,
    {
      contentType: "application/json",
      heartbeat: "\n",
      onError: (message) => JSON.stringify({ __error__: { error: "ServerError", message } }),
      dropStalled: false,
    },
    options,
    async (write, _drained, signal) => {
      write(JSON.stringify((await value(signal)) ?? null));
    },
  );
}
