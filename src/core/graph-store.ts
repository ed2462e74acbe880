/**
 * LangGraph's `BaseStore` over the backend's store items, so graphs read and
 * write the same items the `/store` API serves.
 */
import { BaseStore, type Item, type Operation, type OperationResults } from "@langchain/langgraph";
import type { StoreItems } from "./ports.ts";
import { findUnstorable, UnstorableOutputError } from "./serialize.ts";
import type { StoreItem } from "./types.ts";

const toLangGraphItem = (item: StoreItem): Item => ({
  namespace: item.namespace,
  key: item.key,
  value: item.value,
  createdAt: new Date(item.created_at),
  updatedAt: new Date(item.updated_at),
});

export class ItemsStore extends BaseStore {
  readonly #items: StoreItems;
  constructor(items: StoreItems) {
    super();
    this.#items = items;
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
        results.push(found.map(toLangGraphItem));
      } else if ("value" in op) {
        if (op.value === null) await this.#items.delete(op.namespace, op.key);
        else {
          // Refused alike on every backend (Postgres cannot hold these), as the API refuses them in a request.
          const found = findUnstorable(op.value, "value");
          if (found !== undefined) throw new UnstorableOutputError(found, `The item the graph put in the store at ${JSON.stringify([...op.namespace, op.key])}`);
          await this.#items.put(op.namespace, op.key, op.value);
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
