/**
 * Embeddings as both SQL backends store them (float32, little-endian, in a
 * BLOB or BYTEA) and the exact scan that ranks store items by cosine
 * similarity to a query's embedding (docs/store.md).
 */
import type { ScoredStoreItem } from "../core/ports.ts";
import type { StoreItem } from "../core/types.ts";

export function encodeVector(vector: number[]): Buffer {
  const floats = Float32Array.from(vector);
  return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength);
}

export function decodeVector(bytes: Uint8Array): Float32Array {
  // Copied: a Buffer from a driver may sit at an offset Float32Array cannot view.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
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

/** `namespace` (encoded) and key, as one map key. */
export const itemId = (namespace: string, key: string): string => `${namespace}\u0000${key}`;

/**
 * The page `offset..offset+limit` of `candidates` ranked by their best score
 * against `query` (highest first, ties in the candidates' order), followed
 * by the candidates with no embedding (score null), in their order.
 */
export function rankBySimilarity(candidates: { item: StoreItem; vectors: Float32Array[] }[], query: number[], offset: number, limit: number): ScoredStoreItem[] {
  const scored: { item: StoreItem; score: number; at: number }[] = [];
  const unscored: StoreItem[] = [];
  candidates.forEach(({ item, vectors }, at) => {
    if (vectors.length === 0) unscored.push(item);
    else scored.push({ item, score: Math.max(...vectors.map((vector) => cosine(query, vector))), at });
  });
  scored.sort((a, b) => b.score - a.score || a.at - b.at);
  const ranked: ScoredStoreItem[] = [...scored.map(({ item, score }) => ({ ...item, score })), ...unscored.map((item) => ({ ...item, score: null }))];
  return ranked.slice(offset, offset + limit);
}
