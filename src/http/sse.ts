/**
 * Long responses: server-sent events for streams, and JSON for `wait`/`join`
 * that may take minutes. Both send keep-alive bytes while nothing else is
 * written (so proxies and the SDK's idle detection see a live connection) and
 * notice when the client goes away.
 */
import type { RunEvent } from "../core/types.ts";

const encoder = new TextEncoder();

export const frame = (event: RunEvent): string =>
  `event: ${event.event}\ndata: ${JSON.stringify(event.data ?? null)}\nid: ${event.id}\n\n`;

export interface LongResponseOptions {
  keepAliveMs: number;
  headers?: Record<string, string>;
  /** Called once when the client disconnects before the body ended. */
  onDisconnect?: (() => void) | undefined;
}

/**
 * A streaming response whose body `produce` writes; `heartbeat` is written
 * whenever nothing else was for `keepAliveMs`. The signal aborts when the
 * client disconnects. If `produce` throws while the client is still there,
 * `onError` writes the last words.
 */
function longResponse(
  request: Request,
  init: { contentType: string; heartbeat: string; onError: (message: string) => string },
  options: LongResponseOptions,
  produce: (write: (text: string) => void, signal: AbortSignal) => Promise<void>,
): Response {
  const controller = new AbortController();
  let finished = false;
  const disconnect = () => {
    if (finished) return;
    finished = true;
    controller.abort();
    options.onDisconnect?.();
  };
  request.signal.addEventListener("abort", disconnect, { once: true });
  let keepAlive: NodeJS.Timeout | undefined;
  const stream = new ReadableStream<Uint8Array>({
    async start(sink) {
      let lastWrite = Date.now();
      const write = (text: string) => {
        sink.enqueue(encoder.encode(text));
        lastWrite = Date.now();
      };
      keepAlive = setInterval(() => {
        if (Date.now() - lastWrite < options.keepAliveMs - 5) return;
        try {
          write(init.heartbeat);
        } catch {
          disconnect();
        }
      }, options.keepAliveMs);
      try {
        await produce(write, controller.signal);
        finished = true;
        sink.close();
      } catch (error) {
        if (!controller.signal.aborted) {
          finished = true;
          write(init.onError(error instanceof Error ? error.message : String(error)));
          sink.close();
        }
      } finally {
        clearInterval(keepAlive);
        request.signal.removeEventListener("abort", disconnect);
      }
    },
    cancel() {
      clearInterval(keepAlive);
      disconnect();
    },
  });
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
    },
    { ...options, headers: { Connection: "keep-alive", "X-Accel-Buffering": "no", ...options.headers } },
    async (write, signal) => {
      for await (const event of events(signal)) {
        if (!event.event.startsWith("__")) write(frame(event));
      }
    },
  );
}

/**
 * Answers 200 at once and writes `value(signal)` as JSON when it resolves,
 * with newlines (valid leading JSON whitespace) as keep-alives meanwhile.
 */
export function jsonWhenReady(request: Request, value: (signal: AbortSignal) => Promise<unknown>, options: LongResponseOptions): Response {
  return longResponse(
    request,
    {
      contentType: "application/json",
      heartbeat: "\n",
      onError: (message) => JSON.stringify({ __error__: { error: "ServerError", message } }),
    },
    options,
    async (write, signal) => write(JSON.stringify((await value(signal)) ?? null)),
  );
}
