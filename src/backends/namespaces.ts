/** Store namespaces as stored text, and the `listNamespaces` filter shared by the backends. */
import type { NamespaceQuery } from "../core/ports.ts";


/** Labels joined with U+001F, each followed by it, so a namespace prefix is a plain string prefix. */
export const SEP = "\u001f";
export const encodeNamespace = (ns: readonly string[]): string => ns.map((label) => label + SEP).join("");
export const decodeNamespace = (text: string): string[] => text.split(SEP).slice(0, -1);

export type { NamespaceQuery } from "../core/ports.ts";

/** From every stored namespace (encoded, sorted), those the query asks for ("*" matches any label), cut to `max_depth`, distinct. */
export function filterNamespaces(stored: Iterable<string>, query: NamespaceQuery): string[][] {
  const seen = new Set<string>();
  const out: string[][] = [];
  const { prefix, suffix, max_depth } = query;
  for (const namespace of stored) {
    let labels = decodeNamespace(namespace);
    if (prefix !== undefined && !prefix.every((label, i) => label === "*" || labels[i] === label)) continue;
    if (suffix !== undefined && labels.length < suffix.length) continue;
    if (suffix !== undefined && !suffix.every((label, i) => label === "*" || labels[labels.length - suffix.length + i] === label)) continue;
    if (max_depth !== undefined) labels = labels.slice(0, max_depth);
    const key = encodeNamespace(labels);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(labels);
  }
  return out.slice(query.offset, query.offset + query.limit);
}
