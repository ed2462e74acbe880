import { describe, expect, it } from "vitest";
import { bestScore, cosine, decodeVector, encodeVector, SimilarityRanking } from "./vectors.ts";

describe("store vectors", () => {
  it("decode gives back the float32 values, from an aligned buffer (viewed) and an unaligned one (copied)", () => {
    const values = [0.5, -1.25, 3, 1e-3];
    const bytes = encodeVector(values);
    const decoded = decodeVector(bytes);
    expect(Array.from(decoded)).toEqual(values.map(Math.fround));
    // Viewed in place, not copied.
    expect(decoded.buffer).toBe(bytes.buffer);
    const shifted = Buffer.alloc(bytes.length + 1);
    bytes.copy(shifted, 1);
    const copied = decodeVector(shifted.subarray(1));
    expect(Array.from(copied)).toEqual(values.map(Math.fround));
    expect(copied.buffer).not.toBe(shifted.buffer);
  });

  it("cosine is 0 against a zero vector instead of NaN", () => {
    expect(cosine([1, 0], [0, 0])).toBe(0);
    expect(cosine([1, 1], [2, 2])).toBeCloseTo(1);
    expect(cosine([1, 0], [-1, 0])).toBeCloseTo(-1);
  });

  const row = (key: string, ...vector: number[]) => ({ namespace: "ns", key, embedding: encodeVector(vector) });
  const rank = (rows: ReturnType<typeof row>[], offset: number, limit: number, max = 100) => {
    const ranking = new SimilarityRanking([1, 0], offset + limit, max);
    for (const r of rows) ranking.add(r);
    return ranking.page(offset, limit).map(({ key, score }) => [key, score]);
  };

  it("ranks by each item's best vector (its rows come together), ties in the listing order, then pages", () => {
    const rows = [row("a", 0, 1), row("b", 0, 1), row("b", 1, 0), row("c", 0, 1), row("d", 1, 1)];
    expect(rank(rows, 0, 10)).toEqual([
      ["b", 1],
      ["d", expect.closeTo(Math.SQRT1_2, 6)],
      ["a", 0],
      ["c", 0],
    ]);
    expect(rank(rows, 2, 2)).toEqual([
      ["a", 0],
      ["c", 0],
    ]);
    // Only offset + limit are kept, whatever arrives later.
    expect(rank(rows, 0, 1)).toEqual([["b", 1]]);
  });

  it("refuses (422) a scan of more items than the cap, naming what to narrow", () => {
    const rows = [row("a", 1, 0), row("a", 0, 1), row("b", 1, 0), row("c", 1, 0)];
    expect(rank(rows, 0, 10, 3)).toHaveLength(3);
    expect(() => rank(rows, 0, 10, 2)).toThrow(expect.objectContaining({ code: "invalid_input", message: expect.stringMatching(/more than 2 items; narrow namespace_prefix or add a filter/) }));
  });

  it("a vector that scores NaN (a non-finite element) counts as no score: its item is left out unless another vector scores", () => {
    const v = (...xs: number[]) => Float32Array.from(xs);
    expect(bestScore([1, 0], [v(Number.NaN, 1)])).toBeNull();
    expect(bestScore([1, 0], [v(Number.POSITIVE_INFINITY, 0)])).toBeNull();
    expect(bestScore([1, 0], [v(Number.NaN, 1), v(1, 0)])).toBeCloseTo(1);
    expect(rank([row("nan", Number.NaN, 0), row("ok", 0, 1)], 0, 10)).toEqual([["ok", 0]]);
  });
});
