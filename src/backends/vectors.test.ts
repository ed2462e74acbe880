import { describe, expect, it } from "vitest";
import { bestScore, cosine, decodeVector, encodeVector, rankBySimilarity } from "./vectors.ts";

describe("store vectors", () => {
  it("decode gives back the float32 values, from an aligned buffer (viewed) and an unaligned one (copied)", () => {
    const values = [0.5, -1.25, 3, 1e-3];
    const bytes = encodeVector(values);
    expect(Array.from(decodeVector(bytes))).toEqual(values.map(Math.fround));
    const shifted = Buffer.alloc(bytes.length + 1);
    bytes.copy(shifted, 1);
    expect(Array.from(decodeVector(shifted.subarray(1)))).toEqual(values.map(Math.fround));
  });

  it("cosine is 0 against a zero vector instead of NaN", () => {
    expect(cosine([1, 0], [0, 0])).toBe(0);
    expect(cosine([1, 1], [2, 2])).toBeCloseTo(1);
    expect(cosine([1, 0], [-1, 0])).toBeCloseTo(-1);
  });

  it("ranks by each candidate's best vector, ties in candidate order, unscored candidates last, then pages", () => {
    const v = (...xs: number[]) => Float32Array.from(xs);
    const candidates = [
      { item: "a", vectors: [v(0, 1)] },
      { item: "none-1", vectors: [] },
      { item: "b", vectors: [v(0, 1), v(1, 0)] },
      { item: "c", vectors: [v(0, 1)] },
      { item: "none-2", vectors: [] },
    ];
    const ranked = rankBySimilarity(candidates, [1, 0], 0, 10);
    expect(ranked.map(({ item, score }) => [item, score])).toEqual([
      ["b", 1],
      ["a", 0],
      ["c", 0],
      ["none-1", null],
      ["none-2", null],
    ]);
    expect(rankBySimilarity(candidates, [1, 0], 2, 2).map(({ item }) => item)).toEqual(["c", "none-1"]);
  });

  it("a vector that scores NaN (a non-finite element) counts as no score, and does not hide the item's other vectors", () => {
    const v = (...xs: number[]) => Float32Array.from(xs);
    expect(bestScore([1, 0], [v(Number.NaN, 1)])).toBeNull();
    expect(bestScore([1, 0], [v(Number.POSITIVE_INFINITY, 0)])).toBeNull();
    expect(bestScore([1, 0], [v(Number.NaN, 1), v(1, 0)])).toBeCloseTo(1);
    const ranked = rankBySimilarity([{ item: "nan", vectors: [v(Number.NaN, 0)] }, { item: "ok", vectors: [v(0, 1)] }], [1, 0], 0, 10);
    expect(ranked).toEqual([
      { item: "ok", score: 0 },
      { item: "nan", score: null },
    ]);
  });
});
