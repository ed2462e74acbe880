import { describe, expect, it } from "vitest";
import { CONTAINMENT_CASES } from "../testing/records-suite.ts";
import { contains, hasFilter } from "./filter.ts";

const parse = (text: string): unknown => JSON.parse(text);

describe("contains", () => {
  // Each answer was checked against Postgres 15's `a::jsonb @> b::jsonb`;
  // test/conformance/records.test.ts checks them against Postgres on every run.
  it.each(CONTAINMENT_CASES.map(([document, filter, answer]) => ({ document, filter, answer })))(
    "$document @> $filter is $answer",
    ({ document, filter, answer }) => {
      expect(contains(parse(document), parse(filter))).toBe(answer);
    },
  );

  it("tells a null value from a missing key, and true from 1", () => {
    expect(contains({ k: null }, { k: null })).toBe(true);
    expect(contains({}, { k: null })).toBe(false);
    expect(contains({ k: 1 }, { k: true })).toBe(false);
    expect(contains({ k: true }, { k: 1 })).toBe(false);
  });

  it("reads only own keys: names of Object.prototype are not present in {}", () => {
    for (const key of ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"]) {
      expect(contains({}, parse(`{"${key}":{}}`)), key).toBe(false);
    }
    expect(contains(parse('{"__proto__":[1]}'), parse('{"__proto__":[1]}'))).toBe(true);
  });

  it("looks for each filter element in any element of an array, nested arrays included", () => {
    expect(contains({ a: [[1, 2], [3], { x: [4, 5] }] }, { a: [{ x: [5] }, [2, 1], [3]] })).toBe(true);
    expect(contains({ a: [[1, 2], [3]] }, { a: [[1, 3]] })).toBe(false);
  });

  it("compares structures thousands of levels deep without recursion", () => {
    const depth = 100_000;
    let document: unknown = "leaf";
    for (let i = 0; i < depth; i++) document = i % 2 === 0 ? { k: document } : [document];
    expect(contains(document, document)).toBe(true);
  });
});

describe("hasFilter", () => {
  it("is false for an absent, null or empty filter", () => {
    expect(hasFilter(undefined)).toBe(false);
    expect(hasFilter(null)).toBe(false);
    expect(hasFilter({})).toBe(false);
    expect(hasFilter({ a: undefined })).toBe(true);
  });
});
