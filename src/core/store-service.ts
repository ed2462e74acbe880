/**
 * The store as the API offers it: every action asks the Authorizer first
 * (`store:<action>`, with the value the official handlers see) and acts on
 * the value it hands back. A filter is matched, as on the official server,
 * against the item's value with its `namespace` and `key` added: an item
 * outside it is not found (get, and put or delete over it), a new item
 * outside it is refused (403), and searches leave such items out (in the
 * port's query; namespace listings, which the port cannot scope, are
 * filtered here, page by page).
 */
import { AccessDenied, restricts, type Authorizer } from "./authorizer.ts";
import type { RequestContext } from "./context.ts";
import { invalid, notFound } from "./errors.ts";
import { matches, type Filter } from "./filter.ts";
import type { NamespaceQuery, ScoredStoreItem, StoreSearch } from "./ports.ts";
import type { PutChoices, StoreEngine } from "./store-engine.ts";
import type { JsonObject, StoreItem } from "./types.ts";

export interface StoreServiceDeps {
  /** The store's rules (index, TTLs) over the backend's items. */
  store: StoreEngine;
  authorizer: Authorizer;
}

/** A filtered namespace listing reads candidates this many at a time... */
const SCAN_PAGE = 1000;
/** ...and gives up (asking for a narrower query) after this many, as the official server does. */
const SCAN_MAX = 10_000;

/** What an access filter is matched against: the value, with namespace and key. */
const document = (namespace: string[], key: string | undefined, value: JsonObject | undefined): Record<string, unknown> => ({
  ...(value ?? {}),
  namespace,
  ...(key === undefined ? {} : { key }),
});

const itemName = (namespace: string[], key: string) => [...namespace, key].join(".");

/**
 * The page `offset..offset+limit` of what `read` finds and `keep` accepts,
 * reading `read`'s results in pages until enough are kept or SCAN_MAX were read.
 */
async function scan<T>(read: (limit: number, offset: number) => Promise<T[]>, keep: (found: T) => boolean, limit: number, offset: number): Promise<T[]> {
  const kept: T[] = [];
  let scanned = 0;
  while (kept.length < offset + limit) {
    if (scanned >= SCAN_MAX) {
      throw invalid(`This store query would read more than ${SCAN_MAX} namespaces to find the ones you may see; narrow the prefix or the suffix.`);
    }
    const pageSize = Math.min(SCAN_PAGE, SCAN_MAX - scanned);
    const page = await read(pageSize, scanned);
    scanned += page.length;
    kept.push(...page.filter(keep));
    if (page.length < pageSize) break;
  }
  return kept.slice(offset, offset + limit);
}

export class StoreService {
  readonly #items: StoreEngine;
  readonly #authorizer: Authorizer;

  constructor(deps: StoreServiceDeps) {
    this.#items = deps.store;
    this.#authorizer = deps.authorizer;
  }

  /** Refuses (404) when the item exists outside the filter. */
  async #existingWithin(namespace: string[], key: string, filter: Filter): Promise<StoreItem | null> {
    const existing = await this.#items.get(namespace, key, { refreshTtl: false });
    if (existing !== null && !matches(document(existing.namespace, existing.key, existing.value), filter)) throw notFound("Store item", itemName(namespace, key));
    return existing;
  }

  /** `index` and `ttl` are the put's own choices (PutChoices); the Authorizer sees namespace, key and value as on the official server. */
  async put(ctx: RequestContext, input: { namespace: string[]; key: string; value: JsonObject } & PutChoices): Promise<void> {
    const { index, ttl, ...asked } = input;
    const { value, filter } = await this.#authorizer.authorize(ctx, "store", "put", { ...asked });
    if (restricts(filter)) {
      await this.#existingWithin(value.namespace, value.key, filter);
      if (!matches(document(value.namespace, value.key, value.value), filter)) throw new AccessDenied("store", "put");
    }
    await this.#items.put(value.namespace, value.key, value.value, { index, ttl });
  }

  async delete(ctx: RequestContext, input: { namespace: string[]; key: string }): Promise<void> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "store", "delete", { ...input });
    if (restricts(filter)) {
      const existing = await this.#existingWithin(value.namespace, value.key, filter);
      if (existing === null && !matches(document(value.namespace, value.key, undefined), filter)) throw new AccessDenied("store", "delete");
    }
    // Scoped as well: an item that moved outside the filter since the check above stays.
    await this.#items.delete(value.namespace, value.key, { access: filter });
  }

  /** The item, or null when there is none (an item outside the filter is not found: 404). */
  /** `refreshTtl` (null or absent: the configured `refresh_on_read`) pushes the item's TTL forward. */
  async get(ctx: RequestContext, input: { namespace: string[]; key: string; refreshTtl?: boolean | null | undefined }): Promise<StoreItem | null> {
    const { refreshTtl, ...asked } = input;
    const { value, filter } = await this.#authorizer.authorize(ctx, "store", "get", { ...asked });
    if (!restricts(filter)) return this.#items.get(value.namespace, value.key, { refreshTtl });
    // Read unscoped: an item outside the filter is a 404 (as on the official server), a missing one null.
    const item = await this.#items.get(value.namespace, value.key, { refreshTtl: false });
    if (item !== null && !matches(document(item.namespace, item.key, item.value), filter)) throw notFound("Store item", itemName(value.namespace, value.key));
    if (item === null) return null;
    // Read again to refresh, scoped: an item that left the filter meanwhile is not refreshed.
    return (await this.#items.get(value.namespace, value.key, { access: filter, refreshTtl })) ?? item;
  }

  /** With a query and a configured index: ranked by similarity, each item with its score. */
  async search(ctx: RequestContext, query: Omit<StoreSearch, "vector" | "refreshTtl"> & { refreshTtl?: boolean | null | undefined }): Promise<ScoredStoreItem[]> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "store", "search", {
      namespace: query.namespace_prefix,
      filter: query.filter,
      limit: query.limit,
      offset: query.offset,
      query: query.query,
    });
    return this.#items.search({
      namespace_prefix: value.namespace,
      filter: value.filter,
      limit: value.limit,
      offset: value.offset,
      query: value.query,
      access: filter,
      refreshTtl: query.refreshTtl,
    });
  }

  async listNamespaces(ctx: RequestContext, query: NamespaceQuery): Promise<string[][]> {
    const { value, filter } = await this.#authorizer.authorize(ctx, "store", "list_namespaces", {
      namespace: query.prefix,
      suffix: query.suffix,
      max_depth: query.max_depth,
      limit: query.limit,
      offset: query.offset,
    });
    const asked: NamespaceQuery = { prefix: value.namespace, suffix: value.suffix, max_depth: value.max_depth, limit: value.limit, offset: value.offset };
    if (!restricts(filter)) return this.#items.listNamespaces(asked);
    return scan(
      (limit, offset) => this.#items.listNamespaces({ ...asked, limit, offset }),
      (namespace) => matches(document(namespace, undefined, undefined), filter),
      asked.limit,
      asked.offset,
    );
  }
}
