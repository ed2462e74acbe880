/**
 * The store's rules over the backend's items, shared by the API (StoreService)
 * and by graphs (ItemsStore): what a put embeds (the configured fields, the
 * put's own list, or nothing), which TTL it gets (its own, else the
 * configured default), whether a read refreshes TTLs (its own choice, else
 * `refresh_on_read`), and the query's embedding for a search. The sweeper
 * deletes expired items in the background. See docs/store.md.
 */
import { setImmediate } from "node:timers/promises";
import { BatonError, ErrorCode, coerceError, invalid } from "./errors.ts";
import type { Logger } from "./logger.ts";
import type { NamespaceQuery, ScoredStoreItem, Scoped, StoreItems, StoreSearch } from "./ports.ts";
import { DEFAULT_SEARCH_MAX_CANDIDATES, DEFAULT_STORE_TTL, embedItem, type StoreIndex, type StoreTtlSettings } from "./store-index.ts";
import type { JsonObject, StoreItem } from "./types.ts";

/** The store's bounds, from the server's options (src/config.ts). */
export interface StoreLimits {
  /** How long one call of the embedding provider may take (ms); default `DEFAULT_EMBED_TIMEOUT_MS`. */
  embedTimeoutMs?: number | undefined;
  /** Items one semantic search ranks at most (more: 422); default `DEFAULT_SEARCH_MAX_CANDIDATES`. */
  searchMaxCandidates?: number | undefined;
}

export interface StoreEngineOptions extends StoreLimits {
  /** The semantic index; absent: nothing is embedded and a query is a text match. */
  index?: StoreIndex | undefined;
  ttl?: StoreTtlSettings | undefined;
}

/** An embedding call that has not answered in this long fails the request (503): 30 s. */
export const DEFAULT_EMBED_TIMEOUT_MS = 30_000;
/** Retry-After for a provider that answered 429 without saying when. */
const DEFAULT_RETRY_AFTER_SECONDS = 10;

type ErrorLike = { status?: unknown; statusCode?: unknown; response?: { status?: unknown; headers?: unknown }; headers?: unknown; lc_error_code?: unknown };

/** The HTTP status a provider's error carries (the LangChain integrations' errors keep their client's `status`). */
function statusOf(thrown: unknown): number | undefined {
  if (typeof thrown !== "object" || thrown === null) return undefined;
  const error = thrown as ErrorLike;
  if (error.lc_error_code === "MODEL_RATE_LIMIT") return 429;
  const status = error.status ?? error.statusCode ?? error.response?.status;
  return typeof status === "number" ? status : undefined;
}

/** The provider's own Retry-After (seconds), when its error carries the response headers. */
function retryAfterOf(thrown: unknown): number {
  const error = thrown as ErrorLike;
  const headers = error.headers ?? error.response?.headers;
  const raw =
    headers instanceof Headers ? headers.get("retry-after") : typeof headers === "object" && headers !== null ? (headers as Record<string, unknown>)["retry-after"] : undefined;
  const seconds = Number(raw);
  return Number.isFinite(seconds) && seconds >= 0 ? Math.ceil(seconds) : DEFAULT_RETRY_AFTER_SECONDS;
}

/** The first line of an error's message, at most 200 characters: enough to act on, no stack or request dump. */
function shortReason(error: Error): string {
  const line = (error.message.split("\n")[0] ?? "").trim() || error.name;
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
}

/**
 * One call of the embedding provider, bounded by `timeoutMs`. What it throws
 * becomes a 503 naming the provider and the reason (with Retry-After when
 * the provider answered 429); no answer in time, a 503 too. A wrong answer
 * (vectors of another shape) is already a named 502 (store-index.ts).
 */
async function embedding<T>(embed: string, timeoutMs: number, call: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new BatonError(ErrorCode.upstreamUnavailable, `store embedding provider ${embed} failed: no answer within ${timeoutMs / 1000} s.`)), timeoutMs);
  });
  try {
    // The provider's call cannot be cancelled (Embeddings takes no signal): a late answer is dropped.
    return await Promise.race([call(), timedOut]);
  } catch (thrown) {
    if (thrown instanceof BatonError) throw thrown;
    const rateLimited = statusOf(thrown) === 429;
    throw new BatonError(ErrorCode.upstreamUnavailable, `store embedding provider ${embed} failed: ${shortReason(coerceError(thrown))}`, {
      cause: thrown,
      ...(rateLimited ? { retryAfterSeconds: retryAfterOf(thrown) } : {}),
    });
  } finally {
    clearTimeout(timer);
  }
}

export interface PutChoices {
  /** false: not indexed; a list: these fields instead of the configured ones; null or absent: the configured ones. */
  index?: false | string[] | null | undefined;
  /** Minutes; null: never expires; absent: the configured default. */
  ttl?: number | null | undefined;
}

export class StoreEngine {
  readonly items: StoreItems;
  readonly index: StoreIndex | undefined;
  readonly ttl: StoreTtlSettings;
  readonly #embedTimeoutMs: number;
  readonly #maxCandidates: number;

  constructor(items: StoreItems, options: StoreEngineOptions = {}) {
    this.items = items;
    this.index = options.index;
    this.ttl = options.ttl ?? DEFAULT_STORE_TTL;
    this.#embedTimeoutMs = options.embedTimeoutMs ?? DEFAULT_EMBED_TIMEOUT_MS;
    this.#maxCandidates = options.searchMaxCandidates ?? DEFAULT_SEARCH_MAX_CANDIDATES;
  }

  async put(namespace: string[], key: string, value: JsonObject, choices: PutChoices = {}): Promise<void> {
    if (Array.isArray(choices.index) && this.index === undefined) {
      throw invalid("index lists fields to embed, but this server has no semantic index: configure store.index in langgraph.json, or leave index out.");
    }
    const fields = choices.index === false ? [] : (choices.index ?? this.index?.fields ?? []);
    const index = this.index;
    const vectors = index !== undefined && fields.length > 0 ? await embedding(index.embed, this.#embedTimeoutMs, () => embedItem(index, value, fields)) : undefined;
    const ttlMinutes = choices.ttl === undefined ? this.ttl.defaultTtlMinutes : choices.ttl;
    await this.items.put(namespace, key, value, { vectors, ttlMinutes });
  }

  async get(namespace: string[], key: string, options: Scoped & { refreshTtl?: boolean | null | undefined } = {}): Promise<StoreItem | null> {
    return this.items.get(namespace, key, { access: options.access, refreshTtl: options.refreshTtl ?? this.ttl.refreshOnRead });
  }

  async delete(namespace: string[], key: string, scope?: Scoped): Promise<void> {
    await this.items.delete(namespace, key, scope);
  }

  /** With a query and an index: ranked by similarity, with scores; otherwise as the backend lists them. */
  async search(query: Omit<StoreSearch, "vector" | "refreshTtl"> & { refreshTtl?: boolean | null | undefined }): Promise<ScoredStoreItem[]> {
    const text = query.query;
    const index = this.index;
    const vector = index !== undefined && text !== undefined && text !== "" ? await embedding(index.embed, this.#embedTimeoutMs, () => index.embedQuery(text)) : undefined;
    return this.items.search({ ...query, vector, maxCandidates: this.#maxCandidates, refreshTtl: query.refreshTtl ?? this.ttl.refreshOnRead });
  }

  async listNamespaces(query: NamespaceQuery): Promise<string[][]> {
    return this.items.listNamespaces(query);
  }
}

/** Expired items deleted per statement, so a sweep never holds a long transaction. */
const SWEEP_BATCH = 500;
/** The longest delay a Node timer takes (a longer one fires at once, so the sweeper would never stop). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** The shortest interval: a tiny `sweep_interval_minutes` (tests use them) must not become a hot loop. */
const MIN_SWEEP_INTERVAL_MS = 100;

/** `sweep_interval_minutes` as a timer's delay: at least 100 ms, at most 2^31-1 ms (about 24.8 days). */
export function storeSweepIntervalMs(minutes: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(MIN_SWEEP_INTERVAL_MS, Math.round(minutes * 60_000)));
}

/**
 * Deletes expired store items every `sweepIntervalMinutes`. Safe in every
 * process at once: each batch deletes rows no other sweeper holds, and an
 * expired item is already invisible, so a late or repeated sweep changes
 * nothing anyone sees. The first sweep comes after a random part of the
 * interval, so processes started together do not sweep in step; the
 * sweep yields to the event loop between batches (on SQLite a batch runs
 * on the loop of the process that serves requests).
 */
export class StoreSweeper {
  readonly #items: StoreItems;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;
  #closed = false;

  /** `random`: a number in [0, 1) that places the first sweep in the interval (tests fix it). */
  constructor(items: StoreItems, intervalMinutes: number, logger: Logger, random: () => number = Math.random) {
    this.#items = items;
    this.#logger = logger;
    this.#intervalMs = storeSweepIntervalMs(intervalMinutes);
    this.#timer = setTimeout(() => {
      if (this.#closed) return;
      this.#timer = setInterval(() => void this.sweep(), this.#intervalMs);
      this.#timer.unref();
      void this.sweep();
    }, Math.floor(random() * this.#intervalMs));
    this.#timer.unref();
  }

  /** One sweep (the one under way, if any); resolves to the number of items deleted. */
  sweep(): Promise<number> {
    this.#running ??= this.#sweepAll().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #sweepAll(): Promise<number> {
    let deleted = 0;
    try {
      for (;;) {
        const batch = await this.#items.sweepExpired(SWEEP_BATCH);
        deleted += batch;
        if (batch < SWEEP_BATCH || this.#closed) break;
        // Requests waiting on the loop go first.
        await setImmediate();
      }
      // An empty sweep at debug: it shows the sweeper runs without filling the log.
      if (deleted > 0) this.#logger.info("store:swept", { deleted });
      else this.#logger.debug("store:swept", { deleted });
    } catch (error) {
      this.#logger.warn("store:sweep-failed", { error: (error as Error).message, deleted });
    }
    return deleted;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#timer);
    await this.#running;
  }
}
