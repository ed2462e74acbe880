/**
 * What filters mean, once for every backend. Two kinds: a client's filter
 * (search `metadata`, `values`, a store `filter`, history `metadata`) is
 * JSON containment, below; an access filter from authorization is the
 * `Filter` language further down. src/backends/filter-sql.ts compiles both.
 *
 * Containment, exactly as Postgres defines `jsonb @> jsonb` (the official
 * server filters with it):
 *
 * - An object contains a filter object when every key of the filter is
 *   present and its value contains the filter's value. Key order never
 *   matters; `{k: null}` needs a present `k` whose value is null.
 * - An array contains a filter array when every element of the filter is
 *   contained by some element of the array (order and repeats ignored).
 * - Scalars are equal by type and value: `true` is not `1`, `"1"` is not `1`;
 *   numbers compare numerically (`1` equals `1.0`).
 * - Nesting must line up level by level: below the top, an array does not
 *   contain a bare scalar, and an object never contains an array.
 * - At the top level only, an array contains a scalar that is one of its
 *   elements (Postgres's one exception for raw scalars).
 *
 * Written without recursion (an explicit stack), so a record or a filter
 * nested thousands of levels deep is compared like any other and can never
 * overflow the call stack.
 */

import { BatonError, ErrorCode } from "./errors.ts";

type Container = Record<string, unknown> | unknown[];

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const isContainer = (value: unknown): value is Container => typeof value === "object" && value !== null;

/** Scalar equality as jsonb's: same JSON type and same value. */
const scalarEquals = (a: unknown, b: unknown): boolean => a === b;

interface ObjectFrame {
  kind: "object";
  document: Record<string, unknown>;
  filter: Record<string, unknown>;
  keys: string[];
  /** The key whose value is being compared. */
  index: number;
}

interface ArrayFrame {
  kind: "array";
  document: unknown[];
  filter: unknown[];
  /** The filter element being looked for. */
  index: number;
  /** The document element it is being compared with (containers only). */
  candidate: number;
  /** The document's scalar elements, keyed by type and value, built on first need. */
  scalars: Set<string> | undefined;
}

type Frame = ObjectFrame | ArrayFrame;

/** A comparison of a child pair: settled at once, or a frame to work through. */
type Opened = boolean | Frame;

const scalarKey = (value: unknown): string => `${typeof value}:${String(value)}`;

/** Starts comparing `document` with `filter` below the top level. */
function open(document: unknown, filter: unknown): Opened {
  if (Array.isArray(filter)) {
    if (!Array.isArray(document)) return false;
    return { kind: "array", document, filter, index: 0, candidate: 0, scalars: undefined };
  }
  if (isObject(filter)) {
    if (!isObject(document)) return false;
    return { kind: "object", document, filter, keys: Object.keys(filter), index: 0 };
  }
  return !isContainer(document) && scalarEquals(document, filter);
}

/**
 * Moves a frame on, given the result of its last child comparison
 * (undefined when it has none yet): settles it (a boolean) or names the
 * next pair to compare.
 */
function resume(frame: Frame, child: boolean | undefined): boolean | [unknown, unknown] {
  if (frame.kind === "object") {
    if (child === false) return false;
    if (child === true) frame.index += 1;
    const key = frame.keys[frame.index];
    if (key === undefined) return true;
    if (!Object.hasOwn(frame.document, key)) return false;
    return [frame.document[key], frame.filter[key]];
  }
  if (child === true) {
    frame.index += 1;
    frame.candidate = 0;
  } else if (child === false) {
    frame.candidate += 1;
  }
  for (;;) {
    if (frame.index >= frame.filter.length) return true;
    const wanted = frame.filter[frame.index];
    if (!isContainer(wanted)) {
      frame.scalars ??= new Set(frame.document.filter((element) => !isContainer(element)).map(scalarKey));
      if (!frame.scalars.has(scalarKey(wanted))) return false;
      frame.index += 1;
      frame.candidate = 0;
      continue;
    }
    // A container is looked for among the document's containers of its kind.
    const wantArray = Array.isArray(wanted);
    while (frame.candidate < frame.document.length) {
      const element = frame.document[frame.candidate];
      if (isContainer(element) && Array.isArray(element) === wantArray) return [element, wanted];
      frame.candidate += 1;
    }
    return false;
  }
}

/** Whether `document` contains `filter`, as Postgres's `document @> filter` answers. */
export function contains(document: unknown, filter: unknown): boolean {
  // The top level: a raw scalar may be found in an array, never the reverse.
  if (Array.isArray(document) && !isContainer(filter)) {
    return document.some((element) => !isContainer(element) && scalarEquals(element, filter));
  }
  const first = open(document, filter);
  if (typeof first === "boolean") return first;
  const stack: Frame[] = [first];
  let child: boolean | undefined;
  while (stack.length > 0) {
    const next = resume(stack[stack.length - 1]!, child);
    if (typeof next === "boolean") {
      stack.pop();
      child = next;
      continue;
    }
    const opened = open(next[0], next[1]);
    if (typeof opened === "boolean") {
      child = opened;
    } else {
      stack.push(opened);
      child = undefined;
    }
  }
  return child === true;
}

/** Whether a filter asks for anything (an absent or empty filter matches every record, whatever its column holds). */
export const hasFilter = (filter: Record<string, unknown> | null | undefined): filter is Record<string, unknown> =>
  filter !== undefined && filter !== null && Object.keys(filter).length > 0;

/*
 * Access filters: what an authorization handler (the official `Auth`'s
 * `on.<resource>.<action>`) returns to scope a request, a separate argument
 * from the client's own filter, so no client value ever becomes an operator.
 * Each top-level key names a field of the record's document (an assistant's
 * or thread's metadata; for a store item, its value with `namespace` and
 * `key` set to the item's own) and every condition must hold:
 *
 * - `{k: v}` and `{k: {$eq: v}}`: `k` is present and its value is the
 *   scalar `v` (same JSON type and value, as containment compares scalars).
 *   `$eq: null` matches a present null only, never a missing key (as the
 *   containment filter `{k: null}` does).
 * - `{k: {$in: [v, ...]}}`: `k` is present and its value is one of the
 *   scalars listed (an empty list matches nothing).
 * - `{k: {$contains: v}}` or `{k: {$contains: [v, ...]}}`: `k` holds an array
 *   that has every scalar listed as an element (a string is never searched
 *   for a substring; an empty list matches any array).
 * - Several operators on one key must all hold.
 *
 * Operands are JSON scalars; an operator value of another kind, an unknown
 * operator, or an object without operators is refused (the handler that
 * wrote it has a bug). A condition naming a string no record can hold
 * (U+0000, a lone surrogate) matches nothing.
 */

/** A JSON scalar an access filter compares with. */
export type FilterScalar = string | number | boolean | null;

export interface FilterOperators {
  $eq?: FilterScalar;
  $in?: FilterScalar[];
  $contains?: FilterScalar | FilterScalar[];
}

/** An access filter, as authorization handlers return them. */
export type Filter = Record<string, FilterScalar | FilterOperators>;

/** One checked condition of an access filter; `never` when it names an unstorable string. */
export type FilterCondition =
  | { key: string; op: "eq"; operand: FilterScalar }
  | { key: string; op: "in"; operand: FilterScalar[] }
  | { key: string; op: "contains"; operand: FilterScalar[] }
  | { key: string; op: "never" };

/** A string no stored record can hold: U+0000 or a lone UTF-16 surrogate (JSONB refuses both). */
// eslint-disable-next-line no-control-regex -- U+0000 is one of the characters this looks for
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const unstorable = (value: unknown): boolean => typeof value === "string" && UNSTORABLE.test(value);

const isScalar = (value: unknown): value is FilterScalar =>
  value === null || typeof value === "string" || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value));

const OPERATORS = new Set(["$eq", "$in", "$contains"]);

/** Thrown for a filter no handler should return: the message names the key and what is wrong. */
function refuse(key: string, message: string): never {
  throw new BatonError(ErrorCode.internal, `Invalid access filter at key ${JSON.stringify(key)}: ${message}`);
}

function scalars(key: string, operator: string, value: unknown): FilterScalar[] {
  if (!Array.isArray(value)) refuse(key, `${operator} takes a list of JSON scalars.`);
  for (const element of value) if (!isScalar(element)) refuse(key, `${operator} takes JSON scalars only (strings, finite numbers, booleans, null).`);
  return value as FilterScalar[];
}

/**
 * The conditions of an access filter, checked, in key order (empty for an
 * absent or empty filter: no restriction). Throws a BatonError (internal)
 * for a filter outside the language.
 */
export function accessConditions(filter: Filter | null | undefined): FilterCondition[] {
  if (filter === undefined || filter === null) return [];
  if (!isObject(filter)) throw new BatonError(ErrorCode.internal, "Invalid access filter: expected an object of field conditions.");
  const out: FilterCondition[] = [];
  for (const key of Object.keys(filter)) {
    const value: unknown = filter[key];
    const conditions: FilterCondition[] = [];
    if (isScalar(value)) {
      conditions.push({ key, op: "eq", operand: value });
    } else if (isObject(value)) {
      const operators = Object.keys(value);
      if (operators.length === 0) refuse(key, "an empty object; use {$eq: value} or a scalar.");
      for (const operator of operators) {
        if (!OPERATORS.has(operator)) refuse(key, `unknown operator ${JSON.stringify(operator)} (known: $eq, $in, $contains; values are JSON scalars).`);
        const operand: unknown = value[operator];
        if (operator === "$eq") {
          if (!isScalar(operand)) refuse(key, "$eq takes a JSON scalar (string, finite number, boolean or null).");
          conditions.push({ key, op: "eq", operand });
        } else if (operator === "$in") {
          conditions.push({ key, op: "in", operand: scalars(key, "$in", operand) });
        } else {
          conditions.push({ key, op: "contains", operand: isScalar(operand) ? [operand] : scalars(key, "$contains", operand) });
        }
      }
    } else {
      refuse(key, "expected a JSON scalar or an object of operators ($eq, $in, $contains).");
    }
    for (const condition of conditions) {
      if (unstorable(key)) {
        out.push({ key, op: "never" });
      } else if (condition.op === "in") {
        // A listed value no record can hold is never the one it holds.
        out.push({ key, op: "in", operand: condition.operand.filter((element) => !unstorable(element)) });
      } else if ((condition.op === "eq" && unstorable(condition.operand)) || (condition.op === "contains" && condition.operand.some(unstorable))) {
        out.push({ key, op: "never" });
      } else {
        out.push(condition);
      }
    }
  }
  return out;
}

/** A field of the document: whether it is present, and its value. */
export type FieldReader = (key: string) => { present: boolean; value: unknown };

/** Whether a field satisfies one condition. */
function holds(condition: FilterCondition, field: { present: boolean; value: unknown }): boolean {
  if (condition.op === "never" || !field.present) return false;
  const { value } = field;
  switch (condition.op) {
    case "eq":
      return !isContainer(value) && scalarEquals(value, condition.operand);
    case "in":
      return !isContainer(value) && condition.operand.some((element) => scalarEquals(value, element));
    case "contains":
      return (
        Array.isArray(value) &&
        condition.operand.every((wanted) => value.some((element) => !isContainer(element) && scalarEquals(element, wanted)))
      );
  }
}

/** Whether the fields `read` gives satisfy every condition. */
export function satisfies(read: FieldReader, conditions: readonly FilterCondition[]): boolean {
  return conditions.every((condition) => holds(condition, read(condition.key)));
}

/** Reads the own fields of an object document (anything else has no fields). */
export const fieldsOf =
  (document: unknown): FieldReader =>
  (key) =>
    isObject(document) && Object.hasOwn(document, key) ? { present: true, value: document[key] } : { present: false, value: undefined };

/** Whether `document` (an object) satisfies the access filter; an absent or empty filter matches anything. */
export const matches = (document: unknown, filter: Filter | null | undefined): boolean =>
  satisfies(fieldsOf(document), accessConditions(filter));
