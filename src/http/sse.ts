/**
 * Server-sent events: one frame per run event with its id, keep-alive
 * comments while the run is quiet, and cleanup when the client goes away.
 */
import type { RunEvent } from "../core/types.ts";

const encoder = new TextEncoder();

export const frame = (event: RunEvent): string =>
  `event: ${event.event}\ndata: ${JSON.stringify(event.data ?? null)}\nid: ${event.id}\n\n`;

export interface SseOptions {
  keepAliveMs: number;
  headers?: Record<string, string>;
  /** Called once when the client disconnects before the events ended. */
  onDisconnect?: () => void;
}

/** Streams `events(signal)` as SSE; the signal aborts when the client disconnects. */
export function sseResponse(request: Request, events: (signal: AbortSignal) => AsyncIterable<RunEvent>, options: SseOptions): Response {
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
      keepAlive = setInterval(() => {
        if (Date.now() - lastWrite >= options.keepAliveMs - 5) {
          try {
            sink.enqueue(encoder.encode(": heartbeat\n\n"));
            lastWrite = Date.now();
          } catch {
            disconnect();
          }
        }
      }, options.keepAliveMs);
      try {
        for await (const event of events(controller.signal)) {
          if (event.event.startsWith("__")) continue;
          sink.enqueue(encoder.encode(frame(event)));
          lastWrite = Date.now();
        }
        finished = true;
        sink.close();
      } catch (error) {
        if (!controller.signal.aborted) {
          finished = true;
          const message = error instanceof Error ? error.message : String(error);
          sink.enqueue(encoder.encode(frame({ id: "0", event: "error", data: { error: "StreamError", message } })));
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
  return new Response(stream, {
    headers: {
      "Content-Type": "text/event-stream",
      "Cache-Control": "no-cache",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no",
      ...options.headers,
    },
  });
}
