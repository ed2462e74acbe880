/**
 * LangGraph's `BaseStore` over the backend's store items, so graphs read and
 * write the same items the `/store` API serves.
 */
import { BaseStore, type Item, type Operation, type OperationResults } from "@langchain/langgraph";
import type { ScoredStoreItem, StoreItems } from "./ports.ts";
import { findUnstorable, UnstorableOutputError } from "./serialize.ts";
import { StoreEngine, type StoreEngineOptions } from "./store-engine.ts";
import type { StoreItem } from "./types.ts";

const toLangGraphItem = (item: StoreItem): Item => ({
  namespace: item.namespace,
  key: item.key,
  value: item.value,
  createdAt: new Date(item.created_at),
  updatedAt: new Date(item.updated_at),
});

/** A search result; `score` only when the search ranked by similarity (LangGraph's SearchItem). */
const toSearchItem = (item: ScoredStoreItem) => ({ ...toLangGraphItem(item), ...(item.score === undefined ? {} : { score: item.score ?? undefined }) });

/**
 * Graphs' store: the same rules as the API's (store.index embeds what a put
 * asks, store.ttl gives it its default TTL and refreshes on read).
 */
export class ItemsStore extends BaseStore {
  readonly #items: StoreEngine;
  constructor(items: StoreItems, options: StoreEngineOptions = {}) {
    super();
    this.#items = new StoreEngine(items, options);
  }

  async batch<Op extends Operation[]>(operations: Op): Promise<OperationResults<Op>> {
    const results: unknown[] = [];
    for (const op of operations) {
      if ("namespacePrefix" in op) {
        const found = await this.#items.search({
          namespace_prefix: op.namespacePrefix,
          filter: op.filter,
          limit: op.limit ?? 10,
          offset: op.offset ?? 0,
          query: op.query,
        });
        results.push(found.map(toSearchItem));
      } else if ("value" in op) {
        if (op.value === null) await this.#items.delete(op.namespace, op.key);
        else {
          // Refused alike on every backend (Postgres cannot hold these), as the API refuses them in a request.
          const found = findUnstorable(op.value, "value");
          if (found !== undefined) throw new UnstorableOutputError(found, `The item the graph put in the store at ${JSON.stringify([...op.namespace, op.key])}`);
          // A list of fields without a configured index embeds nothing, as LangGraph's stores do.
          await this.#items.put(op.namespace, op.key, op.value, { index: this.#items.index === undefined ? false : op.index });
        }
        results.push(undefined);
      } else if ("key" in op) {
        const item = await this.#items.get(op.namespace, op.key);
        results.push(item === null ? null : toLangGraphItem(item));
      } else {
        const conditions = op.matchConditions ?? [];
        results.push(
          await this.#items.listNamespaces({
            prefix: conditions.find((c) => c.matchType === "prefix")?.path,
            suffix: conditions.find((c) => c.matchType === "suffix")?.path,
            max_depth: op.maxDepth,
            limit: op.limit,
            offset: op.offset,
          }),
        );
      }
    }
    return results as OperationResults<Op>;
  }
}
