/**
 * Agent Protocol v2 routes (docs/streaming.md): `POST
 * /threads/{id}/commands`, `POST /threads/{id}/stream/events` (SSE) and
 * `GET /threads/{id}/stream/events` upgraded to a WebSocket
 * (src/http/protocol-socket.ts), all over src/core/protocol-service.ts.
 */
import type { Context } from "hono";
import { Hono } from "hono";
import { z } from "zod";
import { BatonError, ErrorCode } from "../../core/errors.ts";
import { isProtocolChannel, type ProtocolEvent } from "../../core/protocol.ts";
import { ProtocolService } from "../../core/protocol-service.ts";
import { ctxOf, type BatonEnv } from "../context.ts";
import type { HttpDeps } from "../deps.ts";
import { commandOf, PROTOCOL_SOCKET, runProtocolSocket, type SocketAcceptor } from "../protocol-socket.ts";
import { sseResponse } from "../sse.ts";
import { parse, readJson, uuidParam } from "../validate.ts";

const Channel = z.string().refine(isProtocolChannel, { message: "a channel is one of values, updates, messages, tools, lifecycle, input, checkpoints, tasks, custom, or custom:<name>" });

/** The body of `POST /threads/{id}/stream/events` (the contract's ProtocolEventStreamRequest; other keys are allowed and ignored, as it says). */
export const EventStreamRequest = z.looseObject({
  channels: z.array(Channel).min(1),
  namespaces: z.array(z.array(z.string())).optional(),
  depth: z.number().int().min(0).optional(),
  since: z.number().int().min(0).optional(),
});

export function protocolRoutes(deps: HttpDeps): Hono<BatonEnv> {
  const app = new Hono<BatonEnv>();
  const protocol = new ProtocolService(deps.runs, deps.threadService);

  app.post("/threads/:thread_id/commands", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    const parsed = commandOf(await readJson(c));
    if ("refusal" in parsed) return c.json(parsed.refusal, 400);
    return c.json(await protocol.command(ctxOf(c), threadId, parsed.command));
  });

  app.post("/threads/:thread_id/stream/events", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    const request = parse(EventStreamRequest, await readJson(c));
    const events = await protocol.events(ctxOf(c), threadId);
    return sseResponse(
      c.req.raw,
      async function* (signal) {
        for await (const event of events(request, request.since, signal)) yield { id: event.event_id, event: event.method, data: event satisfies ProtocolEvent };
      },
      { keepAliveMs: deps.options.keepAliveMs },
    );
  });

  app.get("/threads/:thread_id/stream/events", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    const acceptor = acceptorOf(c);
    if (acceptor === undefined) {
      throw new BatonError(ErrorCode.invalid, "GET /threads/{thread_id}/stream/events is the protocol's WebSocket: connect with a WebSocket client (Upgrade: websocket), or POST the channels for server-sent events.");
    }
    const ctx = ctxOf(c);
    // Access is checked before the upgrade: a thread outside the caller's filter is 404, no socket.
    const events = await protocol.events(ctx, threadId);
    acceptor.accept = (socket) => runProtocolSocket(socket, { threadId, ctx, events, protocol, keepAliveMs: deps.options.keepAliveMs });
    return c.body(null, 200);
  });
  return app;
}

/** The upgrade in progress, when this request came as a WebSocket upgrade (src/http/protocol-socket.ts). */
function acceptorOf(c: Context<BatonEnv>): SocketAcceptor | undefined {
  const env = c.env as Record<symbol, unknown> | undefined;
  return env?.[PROTOCOL_SOCKET] as SocketAcceptor | undefined;
}
