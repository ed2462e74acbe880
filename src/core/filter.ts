/**
 * What a filter means, once for every backend: JSON containment exactly as
 * Postgres defines `jsonb @> jsonb` (the official server filters with it).
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
