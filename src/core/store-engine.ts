/**
 * The store's rules over the backend's items, shared by the API (StoreService)
 * and by graphs (ItemsStore): what a put embeds (the configured fields, the
 * put's own list, or nothing), which TTL it gets (its own, else the
 * configured default), whether a read refreshes TTLs (its own choice, else
 * `refresh_on_read`), and the query's embedding for a search. The sweeper
 * deletes expired items in the background. See docs/store.md.
 */
import { invalid } from "./errors.ts";
import type { Logger } from "./logger.ts";
import type { NamespaceQuery, ScoredStoreItem, Scoped, StoreItems, StoreSearch } from "./ports.ts";
import { DEFAULT_STORE_TTL, embedItem, type StoreIndex, type StoreTtlSettings } from "./store-index.ts";
import type { JsonObject, StoreItem } from "./types.ts";

export interface StoreEngineOptions {
  /** The semantic index; absent: nothing is embedded and a query is a text match. */
  index?: StoreIndex | undefined;
  ttl?: StoreTtlSettings | undefined;
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

  constructor(items: StoreItems, options: StoreEngineOptions = {}) {
    this.items = items;
    this.index = options.index;
    this.ttl = options.ttl ?? DEFAULT_STORE_TTL;
  }

  async put(namespace: string[], key: string, value: JsonObject, choices: PutChoices = {}): Promise<void> {
    if (Array.isArray(choices.index) && this.index === undefined) {
      throw invalid("index lists fields to embed, but this server has no semantic index: configure store.index in langgraph.json, or leave index out.");
    }
    const fields = choices.index === false ? [] : (choices.index ?? this.index?.fields ?? []);
    const vectors = this.index !== undefined && fields.length > 0 ? await embedItem(this.index, value, fields) : undefined;
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
    const vector = this.index !== undefined && text !== undefined && text !== "" ? await this.index.embedQuery(text) : undefined;
    return this.items.search({ ...query, vector, refreshTtl: query.refreshTtl ?? this.ttl.refreshOnRead });
  }

  async listNamespaces(query: NamespaceQuery): Promise<string[][]> {
    return this.items.listNamespaces(query);
  }
}

/** Expired items deleted per statement, so a sweep never holds a long transaction. */
const SWEEP_BATCH = 500;

/**
 * Deletes expired store items every `sweepIntervalMinutes`. Safe in every
 * process at once: each batch deletes rows no other sweeper holds, and an
 * expired item is already invisible, so a late or repeated sweep changes
 * nothing anyone sees.
 */
export class StoreSweeper {
  readonly #items: StoreItems;
  readonly #logger: Logger;
  readonly #timer: NodeJS.Timeout;
  #running: Promise<number> | undefined;

  constructor(items: StoreItems, intervalMinutes: number, logger: Logger) {
    this.#items = items;
    this.#logger = logger;
    this.#timer = setInterval(() => void this.sweep(), Math.max(1, Math.round(intervalMinutes * 60_000)));
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
        if (batch < SWEEP_BATCH) break;
      }
      if (deleted > 0) this.#logger.info("store:swept", { deleted });
    } catch (error) {
      this.#logger.warn("store:sweep-failed", { error: (error as Error).message, deleted });
    }
    return deleted;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }
}
