/**
 * The one compiler from filters to SQL, for both dialects. Two kinds of
 * filter reach a query (src/core/filter.ts defines what each means):
 *
 * - the client's own filter (`metadata`, `values`, a store `filter`): JSON
 *   containment, `@>` on Postgres, `baton_contains` on SQLite;
 * - an access filter from authorization (`$eq`, `$in`, `$contains`, a
 *   separate argument, so a client's key "$eq" is only ever a key).
 *
 * Everything a filter holds goes in as parameters: no key or value ever
 * becomes SQL text or a JSON path. On SQLite both are answered by
 * functions each connection registers (src/backends/sqlite/rows.ts), which
 * run the very functions of src/core/filter.ts; on Postgres they are
 * operators whose answers src/testing/records-suite.ts and
 * test/conformance/records.test.ts check against those same functions.
 */
import { accessConditions, hasFilter, type Filter, type FilterCondition } from "../core/filter.ts";

export type Dialect = "sqlite" | "postgres";

/**
 * What a filter reads: a JSON column (JSONB on Postgres, JSON text on
 * SQLite), or a store item, whose access document is its value with
 * `namespace` (the labels, from the encoded namespace column) and `key` set
 * to the item's own.
 */
export type FilterTarget = string | { value: string; namespace: string; key: string };

export interface Filters {
  /** The client's containment filter; absent or empty asks for nothing. */
  contains?: Record<string, unknown> | null | undefined;
  /** The access filter; absent or empty restricts nothing. */
  access?: Filter | null | undefined;
}

/**
 * A lone UTF-16 surrogate or U+0000 in JSON text, as JSON.stringify writes
 * them (escapes after an even run of backslashes): JSONB holds neither, so a
 * containment filter naming one matches nothing stored (and Postgres would
 * refuse it as a parameter).
 */
const UNSTORABLE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/** The JSON column a client's containment filter reads. */
const valueColumn = (target: FilterTarget): string => (typeof target === "string" ? target : target.value);

/**
 * The SQL conditions (to be joined with AND) for `filters` on `target`,
 * pushing their parameters onto `args` (Postgres placeholders number from
 * `args.length`); none when neither filter asks for anything.
 */
export function compileFilter(dialect: Dialect, target: FilterTarget, filters: Filters, args: unknown[]): string[] {
  const clauses: string[] = [];
  if (hasFilter(filters.contains)) clauses.push(containment(dialect, valueColumn(target), filters.contains, args));
  const conditions = accessConditions(filters.access);
  if (conditions.length > 0) {
    if (dialect === "sqlite") {
      args.push(JSON.stringify(conditions));
      clauses.push(
        typeof target === "string"
          ? `baton_filter(${target}, ?)`
          : `baton_item_filter(${target.value}, ${target.namespace}, ${target.key}, ?)`,
      );
    } else {
      for (const condition of conditions) clauses.push(postgresCondition(target, condition, args));
    }
  }
  return clauses;
}

function containment(dialect: Dialect, column: string, filter: Record<string, unknown>, args: unknown[]): string {
  const text = JSON.stringify(filter);
  if (dialect === "sqlite") {
    // The whole filter is one parameter to the registered function, whatever
    // its number of keys; SQLite's own JSON functions (which refuse records
    // nested over 1000 levels) never read a stored record.
    args.push(text);
    return `baton_contains(${column}, ?)`;
  }
  if (UNSTORABLE_ESCAPE.test(text)) return "FALSE";
  args.push(text);
  return `${column} @> $${args.length}::jsonb`;
}

/** A store item's namespace as a JSONB array of its labels (decoding src/backends/namespaces.ts's text). */
const namespaceLabels = (column: string) =>
  `(CASE WHEN ${column} = '' THEN '[]'::jsonb ELSE to_jsonb(regexp_split_to_array(left(${column}, -1), chr(31))) END)`;

/** The JSONB expression for one field of the target's document (NULL when absent). */
function field(target: FilterTarget, key: string, args: unknown[]): string {
  if (typeof target !== "string") {
    if (key === "namespace") return namespaceLabels(target.namespace);
    if (key === "key") return `to_jsonb(${target.key})`;
  }
  args.push(key);
  return `(${valueColumn(target)} -> $${args.length}::text)`;
}

/**
 * One access condition on Postgres. A missing field is NULL, which no
 * comparison satisfies; `=` on JSONB scalars compares type and value
 * (numbers numerically), as src/core/filter.ts's `satisfies` does.
 */
function postgresCondition(target: FilterTarget, condition: FilterCondition, args: unknown[]): string {
  switch (condition.op) {
    case "never":
      return "FALSE";
    case "eq": {
      if (typeof target === "string" || (condition.key !== "namespace" && condition.key !== "key")) {
        // For a scalar v, containing `{k: v}` is exactly "k is present and is v"
        // (below the top level a scalar is found only in an equal scalar), and
        // as `@>` the GIN index on thread metadata can serve it.
        args.push(JSON.stringify({ [condition.key]: condition.operand }));
        return `${valueColumn(target)} @> $${args.length}::jsonb`;
      }
      const value = field(target, condition.key, args);
      args.push(JSON.stringify(condition.operand));
      return `${value} = $${args.length}::jsonb`;
    }
    case "in": {
      if (condition.operand.length === 0) return "FALSE";
      const value = field(target, condition.key, args);
      args.push(JSON.stringify(condition.operand));
      return `${value} IN (SELECT jsonb_array_elements($${args.length}::jsonb))`;
    }
    case "contains": {
      // An array of scalars: contained element by element, and never by a
      // scalar field (Postgres's top-level exception would let `"a" @> "a"`).
      const value = field(target, condition.key, args);
      args.push(JSON.stringify(condition.operand));
      return `(jsonb_typeof(${value}) = 'array' AND ${value} @> $${args.length}::jsonb)`;
    }
  }
}
