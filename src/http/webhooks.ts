/**
 * Run webhooks: when a run with a `webhook` ends, its record and output are
 * POSTed there (docs/webhooks.md). Deliveries wait in a queue of this
 * process, apart from the worker slots: a slow or dead target delays only
 * its own deliveries, never a run.
 *
 * The policy, for each attempt:
 * - a path ("/hooks/done") goes to the project's own `http.app`, called in
 *   process; never to Baton's API (a webhook is not a way to call the API with
 *   another run's output). Without an `http.app` it fails.
 * - a URL must be http or https. Its host name is resolved (every address)
 *   and, unless `allowPrivate`, refused when any address is loopback,
 *   private, link-local, shared (CGNAT), unspecified, multicast or reserved,
 *   IPv4-mapped IPv6 forms included. The connection goes to an address that
 *   was checked: the check runs inside the socket's own DNS lookup, so a name
 *   that resolves differently a moment later (DNS rebinding) is checked again.
 * - redirects are not followed (a 3xx is a failed delivery).
 * - an attempt has `timeoutMs` to get an answer. Network errors, timeouts,
 *   5xx and 429 are retried, up to `attempts` in all, with exponential backoff
 *   and jitter; any other answer is final.
 *
 * Logs: `run:webhook-sent` (info), `run:webhook-failed` (warn, one per failed
 * attempt; `retry_in_ms` when another follows), `run:webhook-abandoned` (warn,
 * at shutdown), each with `run_id`, `target` (no query string or credentials)
 * and `attempt`.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from "node:dns";
import { request as httpRequest, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import { Hono } from "hono";
import { coerceError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";

export interface WebhookPolicy {
  /** Deliver to loopback, private and link-local addresses too. */
  allowPrivate: boolean;
  /** Time one attempt has to get an answer (ms). */
  timeoutMs: number;
  /** Attempts at most, the first included. */
  attempts: number;
}

/** An app called in process for relative webhooks: the project's own `http.app`. */
export interface InProcessApp {
  request(path: string, init: RequestInit): Response | Promise<Response>;
}

export interface WebhookSenderOptions {
  logger: Logger;
  policy: WebhookPolicy;
  /** Where relative webhooks go (see `projectHooks`); undefined: they fail. */
  app?: InProcessApp | undefined;
  /** Sent as User-Agent. */
  userAgent: string;
  /** Backoff before the second attempt (ms); doubled for each later one. */
  backoffMs?: number;
  /** Deliveries in flight at once; more wait their turn. */
  concurrency?: number;
  /** Told when an attempt fails and is retried, and how each delivery ends (metrics). */
  onOutcome?: (outcome: "delivered" | "retry" | "failed" | "abandoned") => void;
}

export interface WebhookDelivery {
  runId: string;
  url: string;
  /** The JSON body, built for each attempt (it may say when it was sent). */
  body: () => string;
}

const DEFAULT_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;
const DEFAULT_CONCURRENCY = 32;

// ---------------------------------------------------------------------------
// Addresses

/** `a.b.c.d` to a 32-bit number, or undefined. */
function ipv4Number(address: string): number | undefined {
  const parts = address.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    n = n * 256 + Number(part);
  }
  return n;
}

/** An IPv6 address to its eight 16-bit groups (a trailing dotted IPv4 part allowed), or undefined. */
function ipv6Groups(address: string): number[] | undefined {
  let text = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "").toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted !== null) {
    const v4 = ipv4Number(dotted[1]!);
    if (v4 === undefined) return undefined;
    text = `${text.slice(0, dotted.index)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : NaN)));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  return groups.some(Number.isNaN) ? undefined : groups;
}

const inV4 = (n: number, base: string, bits: number) => {
  const start = ipv4Number(base)!;
  const size = 2 ** (32 - bits);
  return n >= start && n < start + size;
};

function ipv4Kind(n: number): string | null {
  if (inV4(n, "0.0.0.0", 8)) return "unspecified";
  if (inV4(n, "127.0.0.0", 8)) return "loopback";
  if (inV4(n, "10.0.0.0", 8) || inV4(n, "172.16.0.0", 12) || inV4(n, "192.168.0.0", 16)) return "private";
  if (inV4(n, "100.64.0.0", 10)) return "shared (CGNAT)";
  if (inV4(n, "169.254.0.0", 16)) return "link-local";
  if (inV4(n, "224.0.0.0", 4)) return "multicast";
  // IETF assignments, benchmarking, documentation, 240/4 and broadcast: nothing a webhook should reach.
  if (inV4(n, "192.0.0.0", 24) || inV4(n, "198.18.0.0", 15) || inV4(n, "192.0.2.0", 24) || inV4(n, "198.51.100.0", 24) || inV4(n, "203.0.113.0", 24) || inV4(n, "240.0.0.0", 4)) {
    return "reserved";
  }
  return null;
}

/**
 * Why a webhook may not go to `address` by default ("loopback", "private",
 * ...), or null for a public address. IPv4 in IPv6 (mapped, compatible,
 * NAT64, 6to4) is judged by its IPv4 address. Not an IP address: "invalid".
 */
export function refusedAddressKind(address: string): string | null {
  const v4 = ipv4Number(address);
  if (v4 !== undefined) return ipv4Kind(v4);
  const g = ipv6Groups(address);
  if (g === undefined) return "invalid";
  const embedded = (hi: number, lo: number) => ipv4Kind(hi * 65536 + lo);
  if (g.every((x) => x === 0)) return "unspecified";
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return "loopback";
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated).
  if (g.slice(0, 5).every((x) => x === 0) && (g[5] === 0xffff || g[5] === 0)) return embedded(g[6]!, g[7]!) ?? (g[5] === 0 ? "reserved" : null);
  // ::ffff:0:a.b.c.d (SIIT, RFC 6145).
  if (g.slice(0, 4).every((x) => x === 0) && g[4] === 0xffff && g[5] === 0) return embedded(g[6]!, g[7]!) ?? "reserved";
  // 64:ff9b::a.b.c.d (NAT64), 64:ff9b:1::/48 (local-use NAT64: any IPv4 behind it) and 2002:aabb:ccdd:: (6to4).
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return embedded(g[6]!, g[7]!);
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1) return embedded(g[6]!, g[7]!) ?? "reserved";
  if (g[0] === 0x2002) return embedded(g[1]!, g[2]!);
  // Teredo (2001::/32) tunnels to an obfuscated IPv4 this check cannot vouch for.
  if (g[0] === 0x2001 && g[1] === 0) return "reserved";
  if ((g[0]! & 0xfe00) === 0xfc00) return "private";
  if ((g[0]! & 0xffc0) === 0xfe80) return "link-local";
  if ((g[0]! & 0xffc0) === 0xfec0) return "private"; // site-local, deprecated
  if ((g[0]! & 0xff00) === 0xff00) return "multicast";
  if (g[0] === 0x2001 && g[1] === 0x0db8) return "reserved"; // documentation
  if (g[0] === 0x0100 && g.slice(1, 4).every((x) => x === 0)) return "reserved"; // discard
  return null;
}

/** A delivery the policy forbids: final, never retried. */
class Refused extends Error {}

const refusal = (host: string, address: string, kind: string) =>
  new Refused(`refused: ${host === address ? address : `${host} resolves to ${address}, which`} is ${kind === "invalid" ? "not an IP address" : `a ${kind} address`} (set webhookAllowPrivate to deliver there)`);

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * The DNS lookup of a webhook's socket: every address the name resolves to is
 * checked, and the socket connects only to those.
 */
function checkedLookup(allowPrivate: boolean) {
  return (hostname: string, options: LookupAllOptions | { all?: boolean; family?: number }, callback: LookupCallback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      if (addresses.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }), []);
      if (!allowPrivate) {
        for (const { address } of addresses) {
          const kind = refusedAddressKind(address);
          if (kind !== null) return callback(refusal(hostname, address, kind), []);
        }
      }
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

// ---------------------------------------------------------------------------
// One attempt

type Attempt = { ok: true; status: number } | { ok: false; retry: boolean; status?: number; error: string };

const classify = (status: number): Attempt =>
  status >= 200 && status < 300
    ? { ok: true, status }
    : {
        ok: false,
        retry: status >= 500 || status === 429,
        status,
        error: status >= 300 && status < 400 ? `answered ${status} (redirects are not followed)` : `answered ${status}`,
      };

/** POSTs `body` to an absolute http(s) URL under the address policy; resolves with the status. */
function postTo(url: URL, body: string, headers: Record<string, string>, policy: WebhookPolicy, signal: AbortSignal): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const host = url.hostname.replace(/^\[|\]$/g, "");
    if (!policy.allowPrivate && isIP(host) !== 0) {
      const kind = refusedAddressKind(host);
      if (kind !== null) return reject(refusal(host, host, kind));
    }
    const options: RequestOptions = {
      method: "POST",
      hostname: host,
      port: url.port === "" ? undefined : Number(url.port),
      path: `${url.pathname}${url.search}`,
      headers: { ...headers, "Content-Length": String(Buffer.byteLength(body)) },
      // user:password in the URL is Basic authorization, as curl sends it.
      auth: url.username === "" ? undefined : `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`,
      agent: false,
      lookup: checkedLookup(policy.allowPrivate) as unknown as RequestOptions["lookup"],
    };
    const request = (url.protocol === "https:" ? httpsRequest : httpRequest)(options, (response) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve(response.statusCode ?? 0);
      // The answer's body is not wanted: the connection goes.
      response.destroy();
    });
    const timer = setTimeout(() => request.destroy(new Error(`no answer within ${policy.timeoutMs} ms`)), policy.timeoutMs);
    const onAbort = () => request.destroy(new Error("abandoned"));
    signal.addEventListener("abort", onAbort, { once: true });
    request.on("error", (error) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      reject(error);
    });
    request.end(body);
  });
}

/** Calls an in-process app, with the attempt's time limit. */
async function callApp(app: InProcessApp, path: string, init: RequestInit, timeoutMs: number, signal: AbortSignal): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const response = await Promise.race([Promise.resolve(app.request(path, { ...init, signal })), late]);
    await response.body?.cancel().catch(() => undefined);
    return response.status;
  } finally {
    clearTimeout(timer);
  }
}

/** A path (not `//host`, which is a URL without its scheme). */
const isRelative = (url: string) => url.startsWith("/") && !url.startsWith("//");

/** What logs name: no query string, no credentials. */
function target(url: string): string {
  if (isRelative(url)) return url.replace(/[?#].*$/, "");
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return "(not a URL)";
  }
}

// ---------------------------------------------------------------------------
// The queue

interface Job {
  delivery: WebhookDelivery;
  /** Attempts started so far. */
  attempt: number;
  timer?: NodeJS.Timeout | undefined;
  abort: AbortController;
}

/**
 * Delivers run webhooks from a queue of this process with retries (see the
 * module comment). `enqueue` returns at once; `close` gives pending deliveries
 * a grace period and logs the rest as abandoned.
 */
export class WebhookSender {
  readonly #options: WebhookSenderOptions;
  readonly #pending = new Set<Job>();
  /** Jobs due for an attempt, waiting for a free place. */
  readonly #due: Job[] = [];
  #inFlight = 0;
  #closed = false;
  #idle: (() => void) | undefined;

  constructor(options: WebhookSenderOptions) {
    this.#options = options;
  }

  /** Deliveries not yet sent, failed for good or abandoned. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  enqueue(delivery: WebhookDelivery): void {
    if (this.#closed) {
      this.#options.logger.warn("run:webhook-abandoned", { run_id: delivery.runId, target: target(delivery.url), attempt: 0, reason: "server stopping" });
      this.#options.onOutcome?.("abandoned");
      return;
    }
    const job: Job = { delivery, attempt: 0, abort: new AbortController() };
    this.#pending.add(job);
    this.#schedule(job);
  }

  #schedule(job: Job): void {
    const limit = this.#options.concurrency ?? DEFAULT_CONCURRENCY;
    if (this.#inFlight >= limit) {
      this.#due.push(job);
      return;
    }
    this.#inFlight += 1;
    void this.#attempt(job).finally(() => {
      this.#inFlight -= 1;
      const next = this.#due.shift();
      if (next !== undefined && !this.#closed) this.#schedule(next);
    });
  }

  async #attempt(job: Job): Promise<void> {
    const { logger, policy } = this.#options;
    const { runId, url } = job.delivery;
    job.attempt += 1;
    const fields = { run_id: runId, target: target(url), attempt: job.attempt };
    let result: Attempt;
    try {
      result = classify(await this.#send(job));
    } catch (error) {
      const message = coerceError(error).message;
      result = { ok: false, retry: !(error instanceof Refused) && !job.abort.signal.aborted, error: message };
    }
    if (job.abort.signal.aborted) return; // abandoned meanwhile (logged by close)
    if (result.ok) {
      logger.info("run:webhook-sent", { ...fields, status: result.status });
      this.#options.onOutcome?.("delivered");
      this.#settle(job);
      return;
    }
    const again = result.retry && job.attempt < policy.attempts;
    const delayMs = again ? this.#backoff(job.attempt) : undefined;
    logger.warn("run:webhook-failed", {
      ...fields,
      ...(result.status !== undefined ? { status: result.status } : {}),
      error: result.error,
      ...(again ? { retry_in_ms: delayMs } : {}),
    });
    this.#options.onOutcome?.(again ? "retry" : "failed");
    if (!again) {
      this.#settle(job);
      return;
    }
    job.timer = setTimeout(() => {
      job.timer = undefined;
      this.#schedule(job);
    }, delayMs);
  }

  /** Exponential, with jitter: half the step plus up to half again at random. */
  #backoff(attempt: number): number {
    const step = Math.min(MAX_BACKOFF_MS, (this.#options.backoffMs ?? DEFAULT_BACKOFF_MS) * 2 ** (attempt - 1));
    return Math.round(step / 2 + (Math.random() * step) / 2);
  }

  async #send(job: Job): Promise<number> {
    const { policy, app, userAgent } = this.#options;
    const { url } = job.delivery;
    const body = job.delivery.body();
    const headers = { "Content-Type": "application/json", "User-Agent": userAgent };
    if (isRelative(url)) {
      if (app === undefined) throw new Refused("a relative webhook goes to the project's http.app, and langgraph.json names none");
      return callApp(app, url, { method: "POST", headers, body }, policy.timeoutMs, job.abort.signal);
    }
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Refused("not a URL");
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Refused(`scheme ${parsed.protocol} is not allowed (http or https only)`);
    return postTo(parsed, body, headers, policy, job.abort.signal);
  }

  #settle(job: Job): void {
    this.#pending.delete(job);
    if (this.#pending.size === 0) this.#idle?.();
  }

  /** Stops taking deliveries; waits up to `graceMs` for pending ones, then abandons the rest (logged). */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    if (this.#pending.size > 0 && graceMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
        timer = setTimeout(resolve, graceMs);
      });
      clearTimeout(timer);
    }
    for (const job of this.#pending) {
      clearTimeout(job.timer);
      job.abort.abort();
      this.#options.logger.warn("run:webhook-abandoned", { run_id: job.delivery.runId, target: target(job.delivery.url), attempt: job.attempt, reason: "server stopping" });
      this.#options.onOutcome?.("abandoned");
    }
    this.#pending.clear();
    this.#due.length = 0;
  }
}

/**
 * The project's app as relative webhooks reach it: its routes and middleware,
 * and a 404 for any other path (its own not-found handler is not used, as
 * when it is mounted in front of the API). Baton's API is not behind it.
 */
export function projectHooks(userApp: Hono): InProcessApp {
  const hooks = new Hono();
  hooks.route("/", userApp);
  hooks.notFound((c) => c.json({ detail: `The project's http.app has no route for ${c.req.method} ${c.req.path}.` }, 404));
  return hooks;
}
