/**
 * Makes two servers' answers comparable: ids and times that differ from run
 * to run become placeholders, everything else is kept as it was sent.
 */

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
/** LangGraph's interrupt ids: a 32-digit hex hash of the task's namespace. */
const HASH = /\b[0-9a-f]{32}\b/g;
const TIME = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})/g;

/**
 * A deep copy of `value` with every UUID and interrupt hash replaced by
 * `<id:N>`, N counting distinct ids in the order they are met (object keys
 * visited in sorted order, so key order does not matter), and every ISO
 * time by `<time>`. The numbering keeps references: an id that appears
 * twice gets the same placeholder both times. `keep` lists ids that are the
 * same on both servers by definition (system assistant ids) and stay as
 * they are.
 */
export function normalise<T>(value: T, keep: ReadonlySet<string> = new Set()): T {
  const seen = new Map<string, string>();
  const id = (raw: string) => {
    const lower = raw.toLowerCase();
    if (keep.has(lower)) return lower;
    let placeholder = seen.get(lower);
    if (placeholder === undefined) {
      placeholder = `<id:${seen.size + 1}>`;
      seen.set(lower, placeholder);
    }
    return placeholder;
  };
  const visit = (v: unknown): unknown => {
    if (typeof v === "string") return v.replace(TIME, "<time>").replace(UUID, id).replace(HASH, id);
    if (Array.isArray(v)) return v.map(visit);
    if (v !== null && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(v).sort()) out[visit(key) as string] = visit((v as Record<string, unknown>)[key]);
      return out;
    }
    return v;
  };
  return visit(value) as T;
}

/**
 * The key sets of `value` at every level, as a tree: objects become their
 * keys mapped to the shape of each value, arrays the shapes of their items,
 * anything else its type.
 */
export function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shape);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = shape((value as Record<string, unknown>)[key]);
    return out;
  }
  return value === null ? "null" : typeof value;
}
