/**
 * The protocol v2 WebSocket (`GET /threads/{id}/stream/events` with
 * `Upgrade: websocket`), on `ws`: the upgrade request goes through the
 * whole app first (authentication, the access seam, the route's checks),
 * and only a request the route accepted becomes a socket; any other answer
 * is written back as a plain HTTP response. On the socket, the client sends
 * protocol commands (`subscription.subscribe` with channels, namespaces,
 * depth and a `since` cursor; `subscription.unsubscribe`; `run.start`,
 * `input.respond`) and gets their responses and the events of its
 * subscriptions, as JSON messages.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { STATUS_CODES } from "node:http";
import { WebSocketServer, type WebSocket } from "ws";
import { BatonError, ErrorCode } from "../core/errors.ts";
import type { RequestContext } from "../core/context.ts";
import type { Logger } from "../core/logger.ts";
import { isProtocolChannel, type ProtocolEvent, type ProtocolFilter } from "../core/protocol.ts";
import { protocolError, type ProtocolCommand, type ProtocolErrorCode, type ProtocolResponse, type ProtocolService } from "../core/protocol-service.ts";
import { z } from "zod";

/** Where the upgrade handler tells the route it may accept the socket (in the request's env). */
export const PROTOCOL_SOCKET = Symbol("baton.protocolSocket");

/** Set by the route when it accepts the upgrade: what to do with the socket. */
export interface SocketAcceptor {
  accept?: (socket: WebSocket) => void;
}

/** Bytes a socket may have waiting before its subscriptions stop reading events until it drains. */
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
/** Largest command a client may send. */
const MAX_MESSAGE_BYTES = 1024 * 1024;

type Fetch = (request: Request, env: Record<string | symbol, unknown>) => Response | Promise<Response>;

const CommandEnvelope = z.looseObject({
  id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  method: z.string().min(1),
  params: z.record(z.string(), z.unknown()).optional(),
});

/** A command envelope, or the 400 ProtocolError the contract names for a malformed one (with `detail`, as every Baton error body has). */
export function commandOf(raw: unknown): { command: ProtocolCommand } | { refusal: Record<string, unknown> } {
  const result = CommandEnvelope.safeParse(raw);
  if (result.success) return { command: result.data };
  const message = `A protocol command is {"id": <integer>, "method": <string>, "params": <object>}: ${result.error.issues.map((i) => `${i.path.join(".") || "body"} ${i.message}`).join("; ")}.`;
  return { refusal: { type: "error", id: null, error: "invalid_argument", message, detail: message } };
}

/** Serves protocol WebSockets on `server`'s upgrade requests, through `fetch` (the app); closing the server closes them. */
export function attachProtocolSockets(server: Server, fetch: Fetch, logger: Logger): void {
  const sockets = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  server.on("upgrade", (incoming: IncomingMessage, socket: Duplex, head: Buffer) => {
    // A client that resets its connection mid-upgrade must not take the process down.
    socket.on("error", () => socket.destroy());
    void upgrade(sockets, fetch, incoming, socket, head).catch((error: unknown) => {
      logger.warn("protocol:upgrade-failed", { error: error instanceof Error ? error.message : String(error) });
      socket.destroy();
    });
  });
  const close = server.close.bind(server);
  server.close = ((callback?: (error?: Error) => void) => {
    for (const client of sockets.clients) client.terminate();
    return close(callback);
  });
}

async function upgrade(sockets: WebSocketServer, fetch: Fetch, incoming: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming.headers)) if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  const acceptor: SocketAcceptor = {};
  const request = new Request(new URL(incoming.url ?? "/", `http://${incoming.headers.host ?? "localhost"}`), { method: "GET", headers });
  const response = await fetch(request, { incoming, outgoing: undefined, [PROTOCOL_SOCKET]: acceptor });
  const accept = acceptor.accept;
  if (response.status !== 200 || accept === undefined) {
    const body = Buffer.from(await response.text());
    socket.end(`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ""}\r\nContent-Type: ${response.headers.get("content-type") ?? "text/plain"}\r\nContent-Length: ${body.byteLength}\r\nConnection: close\r\n\r\n${body.toString()}`);
    return;
  }
  sockets.handleUpgrade(incoming, socket, head, (ws) => accept(ws));
}

export interface SocketSession {
  threadId: string;
  ctx: RequestContext;
  events: (filter: ProtocolFilter, since: number | undefined, signal: AbortSignal) => AsyncIterable<ProtocolEvent>;
  protocol: ProtocolService;
  keepAliveMs: number;
}

/** One protocol socket: commands in, responses and subscribed events out, until either side closes. */
export function runProtocolSocket(ws: WebSocket, session: SocketSession): void {
  const subscriptions = new Map<string, AbortController>();
  const send = (message: unknown) => new Promise<void>((resolve) => ws.send(JSON.stringify(message), () => resolve()));
  // Commands are answered in the order they came.
  let turn: Promise<void> = Promise.resolve();
  ws.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
    const text = Array.isArray(data) ? Buffer.concat(data).toString("utf8") : Buffer.from(data as ArrayBuffer).toString("utf8");
    turn = turn.then(() => handle(text)).catch(() => undefined);
  });
  const ping = setInterval(() => ws.ping(), session.keepAliveMs);
  // A frame too large (over MAX_MESSAGE_BYTES) or malformed: ws closes the socket and reports it here; it is the client's.
  ws.on("error", () => ws.terminate());
  ws.on("close", () => {
    clearInterval(ping);
    for (const stop of subscriptions.values()) stop.abort();
    subscriptions.clear();
  });

  async function handle(text: string): Promise<void> {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      await send(protocolError(null, "invalid_argument", "Protocol commands must be JSON."));
      return;
    }
    const parsed = commandOf(raw);
    if ("refusal" in parsed) return send(parsed.refusal);
    const { command } = parsed;
    try {
      if (command.method === "subscription.subscribe") return await subscribe(command);
      if (command.method === "subscription.unsubscribe") return await send(unsubscribe(command));
      await send(await session.protocol.command(session.ctx, session.threadId, command));
    } catch (error) {
      await send(asProtocolError(command.id, error));
    }
  }

  async function subscribe(command: ProtocolCommand): Promise<void> {
    const filter = subscriptionFilter(command);
    if ("error" in filter) return send(filter);
    const id = randomUUID();
    const stop = new AbortController();
    subscriptions.set(id, stop);
    await send({ type: "success", id: command.id, result: { subscription_id: id } } satisfies ProtocolResponse);
    void (async () => {
      for await (const event of session.events(filter, filter.since, stop.signal)) {
        if (ws.readyState !== ws.OPEN) break;
        // Past the buffer, wait until the socket has taken this event before reading more.
        if (ws.bufferedAmount > SOCKET_BUFFER_BYTES) await send(event);
        else void send(event);
      }
    })().catch(() => ws.close(1011, "event stream failed"));
  }

  function unsubscribe(command: ProtocolCommand): ProtocolResponse {
    const id = command.params?.subscription_id;
    const stop = typeof id === "string" ? subscriptions.get(id) : undefined;
    if (stop === undefined) return protocolError(command.id, "no_such_subscription", `No subscription '${String(id).slice(0, 100)}' on this socket.`);
    stop.abort();
    subscriptions.delete(id as string);
    return { type: "success", id: command.id, result: {} };
  }
}

/** A subscribe command's filter and cursor, or the protocol error that says what is wrong with it. */
function subscriptionFilter(command: ProtocolCommand): (ProtocolFilter & { since: number | undefined }) | (ProtocolResponse & { type: "error" }) {
  const params = command.params ?? {};
  const bad = (message: string) => protocolError(command.id, "invalid_argument", message) as ProtocolResponse & { type: "error" };
  const { channels, namespaces, depth, since } = params;
  if (!Array.isArray(channels) || channels.length === 0 || !channels.every((c) => typeof c === "string" && isProtocolChannel(c))) {
    return bad("subscription.subscribe needs 'channels': a non-empty list of values, updates, messages, tools, lifecycle, input, checkpoints, tasks, custom or custom:<name>.");
  }
  if (namespaces !== undefined && !(Array.isArray(namespaces) && namespaces.every((n) => Array.isArray(n) && n.every((s) => typeof s === "string")))) {
    return bad("'namespaces' must be a list of namespaces (lists of strings).");
  }
  if (depth !== undefined && !(Number.isSafeInteger(depth) && (depth as number) >= 0)) return bad("'depth' must be a non-negative integer.");
  if (since !== undefined && !(Number.isSafeInteger(since) && (since as number) >= 0)) return bad("'since' must be a non-negative integer seq.");
  return { channels: channels as string[], namespaces: namespaces, depth: depth as number | undefined, since: since as number | undefined };
}

/** A refusal thrown while handling a command, as the protocol error the client reads. */
function asProtocolError(id: number, error: unknown): ProtocolResponse {
  const codes: Partial<Record<string, ProtocolErrorCode>> = {
    [ErrorCode.invalid]: "invalid_argument",
    [ErrorCode.unsupported]: "invalid_argument",
    [ErrorCode.notFound]: "no_such_run",
    [ErrorCode.forbidden]: "permission_denied",
  };
  if (error instanceof BatonError) return protocolError(id, codes[error.code] ?? "unknown_error", error.message);
  return protocolError(id, "unknown_error", "The command failed on the server; see its logs.");
}
