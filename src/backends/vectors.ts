/**
 * Embeddings as both SQL backends store them (float32, little-endian, in a
 * BLOB or BYTEA) and the exact scan that ranks store items by cosine
 * similarity to a query's embedding (docs/store.md).
 */

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

/** `namespace` (encoded) and key, as one map key. */
export const itemId = (namespace: string, key: string): string => `${namespace}\u0000${key}`;

/**
 * The page `offset..offset+limit` of `candidates` ranked by their best score
 * against `query` (highest first, ties in the candidates' order), followed
 * by the candidates with no embedding (score null), in their order.
 */
export function rankBySimilarity<T>(candidates: { item: T; vectors: Float32Array[] }[], query: number[], offset: number, limit: number): { item: T; score: number | null }[] {
  const scored: { item: T; score: number; at: number }[] = [];
  const unscored: { item: T; score: null }[] = [];
  candidates.forEach(({ item, vectors }, at) => {
    const score = bestScore(query, vectors);
    if (score === null) unscored.push({ item, score: null });
    else scored.push({ item, score, at });
  });
  scored.sort((a, b) => b.score - a.score || a.at - b.at);
  return [...scored.map(({ item, score }) => ({ item, score })), ...unscored].slice(offset, offset + limit);
}
