/**
 * What the official server provides to a project's code through globals, and
 * the SDK reads: the logger `getLogger()` returns, and the fetch a
 * `new Client()` without a URL uses to call the server it runs in. Set
 * before any graph module is imported, since modules may call them at import.
 */
import { getConfig } from "@langchain/langgraph";
import type { Logger, LogLevel } from "../core/logger.ts";

const LOGGER = Symbol.for("langgraph.api.sdk-logger");
const FETCH = Symbol.for("langgraph_api:fetch");

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** The SDK's leveled methods (winston's names) onto Baton's four levels. */
const LEVELS: Record<string, LogLevel> = {
  error: "error",
  warn: "warn",
  info: "info",
  help: "info",
  data: "info",
  prompt: "info",
  http: "info",
  input: "info",
  verbose: "debug",
  debug: "debug",
  silly: "debug",
};

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** The node a line was logged from, when it was logged inside a run (as the official server adds it). */
function currentNode(): string | undefined {
  try {
    const node = getConfig()?.metadata?.langgraph_node;
    return typeof node === "string" ? node : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A logger with the SDK's interface that writes through Baton's: the message
 * becomes the line's `msg`, object arguments its fields, `source: "graph"`
 * tells it apart from Baton's own lines.
 */
export function sdkLogger(logger: Logger): Record<string, (...args: unknown[]) => unknown> {
  const sdk: Record<string, (...args: unknown[]) => unknown> = {};
  for (const [method, level] of Object.entries(LEVELS)) {
    sdk[method] = (first: unknown, ...rest: unknown[]) => {
      const info = isRecord(first) ? first : { message: first };
      const { message, ...own } = info;
      const fields: Record<string, unknown> = { source: "graph", ...own };
      const extra: unknown[] = [];
      for (const item of rest) {
        if (isRecord(item)) Object.assign(fields, item);
        else extra.push(item);
      }
      if (extra.length > 0) fields.args = extra;
      const node = currentNode();
      if (node !== undefined) fields.langgraph_node = node;
      logger[level](typeof message === "string" ? message : JSON.stringify(message) ?? String(message), fields);
      return sdk;
    };
  }
  return sdk;
}

/*
 * The globals are set once per process and forward to the latest server's
 * logger and fetch: a module imported under one server (and cached) keeps
 * working under the next one in the same process (tests start several).
 */
let currentLogger: Logger | undefined;
let currentFetch: Fetch | undefined;
const forwardingLogger: Logger = {
  debug: (msg, fields) => currentLogger?.debug(msg, fields),
  info: (msg, fields) => currentLogger?.info(msg, fields),
  warn: (msg, fields) => currentLogger?.warn(msg, fields),
  error: (msg, fields) => currentLogger?.error(msg, fields),
};
const forwardingFetch: Fetch = (input, init) => currentFetch!(input, init);

/** Sets the logger global (`getLogger()` of @langchain/langgraph-sdk). */
export function registerSdkLogger(logger: Logger): void {
  currentLogger = logger;
  (globalThis as Record<symbol, unknown>)[LOGGER] ??= sdkLogger(forwardingLogger);
}

/** Sets the fetch a URL-less `new Client()` uses (see `rebase` for where its requests go). */
export function registerLoopbackFetch(fetch: Fetch): void {
  currentFetch = fetch;
  (globalThis as Record<symbol, unknown>)[FETCH] ??= forwardingFetch;
}

/**
 * The request a URL-less client made, addressed to `apiRoot`: the origin of
 * this server and the path the API is mounted at (`http.mount_prefix`).
 * The client knows neither: it puts a placeholder origin before the API's
 * own paths (`/assistants/search`), so its path and query go after the
 * root's path.
 */
export function rebase(input: string | URL | Request, init: RequestInit | undefined, apiRoot: string): Request {
  const request = new Request(input, init);
  const url = new URL(request.url);
  const root = new URL(apiRoot);
  return new Request(new URL(root.pathname.replace(/\/+$/, "") + url.pathname + url.search, root), request);
}

/** A fetch that sends a URL-less client's requests to `apiRoot` (this server over loopback, with its mount prefix). */
export function fetchVia(apiRoot: () => Promise<string>): Fetch {
  return async (input, init) => fetch(rebase(input, init, await apiRoot()));
}
