/**
 * Embeddings as both SQL backends store them (float32, little-endian, in a
 * BLOB or BYTEA) and the exact scan that ranks store items by cosine
 * similarity to a query's embedding (docs/store.md).
 */
import { invalid, type BatonError } from "../core/errors.ts";

export function encodeVector(vector: number[]): Buffer {
  const floats = Float32Array.from(vector);
  return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength);
}

export function decodeVector(bytes: Uint8Array): Float32Array {
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  // A Buffer from a driver's pool may sit at an offset a Float32Array cannot view: copied.
  return new Float32Array(Uint8Array.prototype.slice.call(bytes).buffer);
}

/** Cosine similarity; 0 when either vector is all zeros. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    dot += a[i]! * b[i]!;
    normA += a[i]! * a[i]!;
    normB += b[i]! * b[i]!;
  }
  return normA === 0 || normB === 0 ? 0 : dot / Math.sqrt(normA * normB);
}

/**
 * The best cosine of `query` against `vectors`; null when there is none
 * (no embedding, or only ones that score NaN: a non-finite element stored
 * before they were refused at put).
 */
export function bestScore(query: ArrayLike<number>, vectors: Float32Array[]): number | null {
  let best: number | null = null;
  for (const vector of vectors) {
    const score = cosine(query, vector);
    if (!Number.isNaN(score) && (best === null || score > best)) best = score;
  }
  return best;
}

/** One stored embedding as the scan reads it: its item (namespace encoded, key) and its bytes. */
export interface EmbeddingRow {
  namespace: string;
  key: string;
  embedding: Uint8Array;
  /** The item's, when the scan reads it (kept on the ranked item). */
  updated_at?: Date | string;
}

/** An item the ranking kept, with its score. */
export interface RankedKey {
  namespace: string;
  key: string;
  score: number;
  updated_at?: Date | string | undefined;
}

/** Embedding rows the exact scan reads per batch (then yields to the event loop where it can). */
export const SCAN_BATCH = 500;

/** The 422 of a semantic search that would rank more than `max` items. */
export const tooManyCandidates = (max: number): BatonError =>
  invalid(`This semantic search would rank more than ${max} items; narrow namespace_prefix or add a filter.`);

/**
 * The exact scan's ranking, fed embedding rows in the listing order (most
 * recently updated first, then namespace and key; an item's rows
 * together). It keeps only the best `keep` items (offset + limit), by their
 * best score, highest first, equal scores in the listing order: memory is
 * bounded by the page, not by the store. More than `maxCandidates` items
 * is refused (422) rather than scanned.
 */
export class SimilarityRanking {
  readonly #query: number[];
  readonly #keep: number;
  readonly #maxCandidates: number;
  readonly #top: RankedKey[] = [];
  #current: { namespace: string; key: string; updated_at: Date | string | undefined; best: number | null } | undefined;
  #candidates = 0;

  constructor(query: number[], keep: number, maxCandidates: number) {
    this.#query = query;
    this.#keep = keep;
    this.#maxCandidates = maxCandidates;
  }

  add(row: EmbeddingRow): void {
    const current = this.#current;
    if (current === undefined || current.namespace !== row.namespace || current.key !== row.key) {
      this.#finish();
      if (++this.#candidates > this.#maxCandidates) throw tooManyCandidates(this.#maxCandidates);
      this.#current = { namespace: row.namespace, key: row.key, updated_at: row.updated_at, best: null };
    }
    const score = bestScore(this.#query, [decodeVector(row.embedding)]);
    if (score !== null && (this.#current!.best === null || score > this.#current!.best)) this.#current!.best = score;
  }

  /** The page `offset..offset+limit` of the ranking (offset + limit at most `keep`). */
  page(offset: number, limit: number): RankedKey[] {
    this.#finish();
    return this.#top.slice(offset, offset + limit);
  }

  #finish(): void {
    const item = this.#current;
    this.#current = undefined;
    if (item === undefined || item.best === null) return;
    this.#insert({ namespace: item.namespace, key: item.key, score: item.best, updated_at: item.updated_at });
  }

  /** Inserted after every item of an equal or higher score (earlier in the listing wins a tie). */
  #insert(entry: RankedKey): void {
    const top = this.#top;
    if (top.length >= this.#keep && (top.length === 0 || entry.score <= top[top.length - 1]!.score)) return;
    let low = 0;
    let high = top.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (top[mid]!.score >= entry.score) low = mid + 1;
      else high = mid;
    }
    top.splice(low, 0, entry);
    if (top.length > this.#keep) top.pop();
  }
}

/**
 * The page's items in the ranking's order, each with its score, from the
 * rows read for the page (matched by namespace and key; a row missing from
 * them is left out).
 */
export function pageInOrder<R extends { namespace: string; key: string }>(page: RankedKey[], rows: R[]): { row: R; score: number }[] {
  const byItem = new Map(rows.map((row) => [JSON.stringify([row.namespace, row.key]), row]));
  return page.flatMap(({ namespace, key, score }) => {
    const row = byItem.get(JSON.stringify([namespace, key]));
    return row === undefined ? [] : [{ row, score }];
  });
}

/** When an item put now with `ttlMinutes` expires (epoch ms); null: never. */
export const expiresAt = (nowMs: number, ttlMinutes: number | null): number | null => (ttlMinutes === null ? null : nowMs + Math.round(ttlMinutes * 60_000));
