/**
 * Thread streams: `GET /threads/{thread_id}/stream`, every run of a thread as
 * it happens (src/core/thread-stream.ts says which events), resumable with
 * `Last-Event-ID` from the thread's log in the event bus, in any API process.
 */
import type { Context } from "hono";
import { Hono } from "hono";
import { BatonError, ErrorCode } from "../../core/errors.ts";
import { THREAD_STREAM_MODES, threadModeFilter, type ThreadStreamMode } from "../../core/thread-stream.ts";
import { ctxOf, type BatonEnv } from "../context.ts";
import type { HttpDeps } from "../deps.ts";
import { sseResponse } from "../sse.ts";
import { uuidParam } from "../validate.ts";

/**
 * The modes a request asks for: `stream_modes` (the contract's name) or
 * `stream_mode` (what the JS SDK's joinStream sends), repeated or not;
 * empty values are ignored; an unknown mode is refused (422).
 */
function threadModes(c: Context<BatonEnv>): ThreadStreamMode[] {
  const named = [...(c.req.queries("stream_modes") ?? []), ...(c.req.queries("stream_mode") ?? [])].flatMap((m) => m.split(",")).map((m) => m.trim()).filter((m) => m !== "");
  for (const mode of named) {
    if (!(THREAD_STREAM_MODES as readonly string[]).includes(mode)) {
      throw new BatonError(ErrorCode.invalid, `Unknown thread stream mode '${mode.slice(0, 100)}' in stream_modes: use ${THREAD_STREAM_MODES.join(", ")}.`);
    }
  }
  return named as ThreadStreamMode[];
}

export function threadStreamRoutes(deps: HttpDeps): Hono<BatonEnv> {
  const app = new Hono<BatonEnv>();
  app.get("/threads/:thread_id/stream", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    const keep = threadModeFilter(threadModes(c));
    const events = await deps.runs.threadStream(ctxOf(c), threadId);
    const lastEventId = c.req.header("Last-Event-ID") ?? undefined;
    return sseResponse(
      c.req.raw,
      async function* (signal) {
        for await (const event of events(lastEventId, signal)) if (keep(event)) yield event;
      },
      { keepAliveMs: deps.options.keepAliveMs },
    );
  });
  return app;
}
