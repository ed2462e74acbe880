import { describe, expect, it } from "vitest";
import { ACCESS_CASES, CONTAINMENT_CASES } from "../testing/records-suite.ts";
import { BatonError } from "./errors.ts";
import { accessConditions, contains, hasFilter, matches, type Filter } from "./filter.ts";

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

describe("matches (access filters)", () => {
  it.each(ACCESS_CASES.map(([document, filter, answer]) => ({ document, filter, answer })))(
    "$document with $filter is $answer",
    ({ document, filter, answer }) => {
      expect(matches(parse(document), parse(filter) as Filter)).toBe(answer);
    },
  );

  it("tells a present null from a missing key, and true from 1", () => {
    expect(matches({ k: null }, { k: { $eq: null } })).toBe(true);
    expect(matches({}, { k: { $eq: null } })).toBe(false);
    expect(matches({ k: 1 }, { k: true })).toBe(false);
    expect(matches({ k: [1] }, { k: { $contains: true } })).toBe(false);
  });

  it("restricts nothing when absent or empty, and matches no document that is not an object otherwise", () => {
    expect(matches(null, undefined)).toBe(true);
    expect(matches("x", {})).toBe(true);
    expect(matches(["k"], { 0: "k" })).toBe(false);
    expect(matches(null, { k: null })).toBe(false);
  });

  it("reads only own keys: names of Object.prototype are missing from {}", () => {
    for (const key of ["__proto__", "constructor", "toString", "hasOwnProperty"]) {
      expect(matches({}, parse(`{"${key}":{"$in":[null]}}`) as Filter), key).toBe(false);
      expect(matches({}, parse(`{"${key}":{"$contains":[]}}`) as Filter), key).toBe(false);
    }
  });

  it("refuses filters outside the language, naming the key", () => {
    const refused = [
      { k: { $gt: 1 } },
      { k: { $eq: 1, $ne: 2 } },
      { k: [1] },
      { k: {} },
      { k: { a: 1 } },
      { k: { $in: "a" } },
      { k: { $in: [[1]] } },
      { k: { $eq: { a: 1 } } },
      { k: { $contains: [{ a: 1 }] } },
      { k: Number.POSITIVE_INFINITY },
      { k: undefined },
    ];
    for (const filter of refused) {
      expect(() => accessConditions(filter as unknown as Filter), JSON.stringify(filter)).toThrow(BatonError);
      expect(() => accessConditions(filter as unknown as Filter)).toThrow(/at key "k"/);
    }
    expect(() => accessConditions([] as unknown as Filter)).toThrow(BatonError);
  });

  it("turns conditions naming an unstorable string into ones that match nothing", () => {
    expect(accessConditions({ k: "\u0000" })).toEqual([{ key: "k", op: "never" }]);
    expect(accessConditions({ k: { $in: ["a", "\uD800"] } })).toEqual([{ key: "k", op: "in", operand: ["a"] }]);
    expect(accessConditions({ "\uDC00": 1 })).toEqual([{ key: "\uDC00", op: "never" }]);
    expect(accessConditions({ k: "\uD83D\uDE00" })).toEqual([{ key: "k", op: "eq", operand: "\uD83D\uDE00" }]);
  });
});
