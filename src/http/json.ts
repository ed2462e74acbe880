/**
 * Strict reading of JSON request bodies: what Baton cannot store faithfully,
 * or what could hurt a later request, is refused here with the path of the
 * offending value, never silently changed and never passed on.
 *
 * `checkJsonText` scans the text once, without recursion (a body nested
 * 100,000 levels deep costs a loop, not the stack), before `JSON.parse` sees
 * it. It finds what `JSON.parse` would hide: duplicate keys (the last would
 * win), numbers beyond a double (1e400 would become Infinity, stored as
 * null), `__proto__` keys (dropped or turned into a prototype by ordinary
 * object handling), lone UTF-16 surrogates and NUL (Postgres cannot store
 * them; refused on every backend alike), and the configured limits.
 * `checkJsonValue` applies the same rules, where they still apply, to a
 * value a project's middleware parsed and may have changed.
 */
import { BatonError, ErrorCode } from "../core/errors.ts";

/** The limits on one request body (docs/configuration.md, "Limits"). */
export interface JsonLimits {
  maxJsonDepth: number;
  maxStringLength: number;
  maxObjectKeys: number;
}

/** Thrown by `checkJsonText` when the text is not JSON; the caller words the 400. */
export class MalformedJson extends Error {
  override readonly name = "MalformedJson";
}

const OPTION = {
  depth: "maxJsonDepth / BATON_MAX_JSON_DEPTH",
  string: "maxStringLength / BATON_MAX_STRING_LENGTH",
  keys: "maxObjectKeys / BATON_MAX_OBJECT_KEYS",
} as const;

/** One open object or array while scanning or walking. */
interface Frame {
  array: boolean;
  /** Current key (objects) or index (arrays); undefined before the first. */
  at: string | number | undefined;
  /** Keys seen so far: a list while short, a set beyond (objects are mostly small). */
  keys: string[] | Set<string> | undefined;
}

const SHOWN_SEGMENTS = 8;

/** "metadata.a[3].b", shortened in the middle when deep; "body" at the top. */
function pathOf(frames: readonly Frame[], last?: string | number): string {
  const segments: (string | number)[] = [];
  for (const frame of frames) if (frame.at !== undefined) segments.push(frame.at);
  if (last !== undefined) segments.push(last);
  if (segments.length === 0) return "body";
  const render = (s: string | number, first: boolean) =>
    typeof s === "number" ? `[${s}]` : `${first ? "" : "."}${s.length > 40 ? `${s.slice(0, 40)}…` : s}`;
  if (segments.length <= SHOWN_SEGMENTS) return segments.map((s, i) => render(s, i === 0)).join("");
  const head = segments.slice(0, SHOWN_SEGMENTS - 2).map((s, i) => render(s, i === 0)).join("");
  const tail = segments.slice(-2).map((s) => render(s, false)).join("");
  return `${head}…(${segments.length} levels)…${tail}`;
}

const refuse = (path: string, what: string): BatonError => new BatonError(ErrorCode.invalid, `${path}: ${what}`);

const deeper = (path: string, limits: JsonLimits) =>
  refuse(path, `nested deeper than ${limits.maxJsonDepth} levels of objects and arrays (${OPTION.depth}).`);
const longer = (path: string, length: number, limits: JsonLimits, key: boolean) =>
  refuse(path, `${key ? "key" : "string"} of ${length} characters is longer than the limit of ${limits.maxStringLength} (${OPTION.string}).`);
const wider = (path: string, limits: JsonLimits) => refuse(path, `object has more than ${limits.maxObjectKeys} keys (${OPTION.keys}).`);
const surrogate = (path: string, key: boolean) =>
  refuse(path, `${key ? "key" : "string"} contains a lone UTF-16 surrogate (an unpaired \\uD800-\\uDFFF escape), which Baton does not store (Postgres cannot); send a complete pair or remove it.`);
const nul = (path: string, key: boolean) =>
  refuse(path, `${key ? "key" : "string"} contains the NUL character (\\u0000), which Baton does not store (Postgres cannot); remove it or replace it.`);
const proto = (path: string) => refuse(path, `the key "__proto__" is refused: it cannot be stored faithfully through JavaScript objects. Rename it.`);
const duplicate = (path: string) => refuse(path, `duplicate key in one object; JSON would keep only the last value. Send each key once.`);
const infinite = (path: string, token: string) =>
  refuse(path, `number ${token.length > 40 ? `${token.slice(0, 40)}…` : token} does not fit a double (about ±1.8e308 at most); send it as a string.`);

const isHigh = (code: number) => code >= 0xd800 && code <= 0xdbff;
const isLow = (code: number) => code >= 0xdc00 && code <= 0xdfff;
const HEX = /^[0-9a-fA-F]{4}$/;
/** Characters a string may hold with no further look: not a quote, backslash, control or surrogate. */
// eslint-disable-next-line no-control-regex -- control characters are what this excludes
const PLAIN = /[^"\\\u0000-\u001f\ud800-\udfff]*/y;

/**
 * Checks JSON text against the rules above and the limits, in one pass
 * without recursion. Throws `MalformedJson` when the text is not JSON, and a
 * `BatonError` (422) naming the path of the first refused value.
 */
export function checkJsonText(text: string, limits: JsonLimits): void {
  const n = text.length;
  let pos = 0;
  const frames: Frame[] = [];
  const malformed = (what: string) => new MalformedJson(`${what} at position ${pos}`);
  const skipSpace = () => {
    while (pos < n) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else break;
    }
  };
  /**
   * Reads the string starting at `pos` (a quote); returns its decoded text
   * when `decode` (keys), else its length in UTF-16 code units.
   */
  // A key's problems are reported at its object's path, a value's at its own.
  const stringPath = (key: boolean) => (key ? pathOf(frames.slice(0, -1)) : pathOf(frames));
  let pendingHigh = false;
  /** Tracks surrogate pairing across one string's code units. */
  const unit = (code: number, key: boolean) => {
    if (pendingHigh) {
      if (isLow(code)) {
        pendingHigh = false;
        return;
      }
      throw surrogate(stringPath(key), key);
    }
    if (isHigh(code)) pendingHigh = true;
    else if (isLow(code)) throw surrogate(stringPath(key), key);
  };
  const readString = (decode: boolean): string | number => {
    pos++;
    let out = "";
    let runStart = pos;
    let length = 0;
    pendingHigh = false;
    const path = () => stringPath(decode);
    for (;;) {
      if (pos >= n) throw malformed("Unterminated string");
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        if (pendingHigh) throw surrogate(path(), decode);
        if (decode) out += text.slice(runStart, pos);
        pos++;
        break;
      }
      if (c < 0x20) throw malformed("Control character in string");
      if (c === 0x5c) {
        if (decode) out += text.slice(runStart, pos);
        const e = text.charCodeAt(pos + 1);
        let code: number;
        if (e === 0x75) {
          const hex = text.slice(pos + 2, pos + 6);
          if (!HEX.test(hex)) throw malformed("Bad \\u escape");
          code = parseInt(hex, 16);
          pos += 6;
        } else {
          const simple = ESCAPES[e];
          if (simple === undefined) throw malformed("Bad escape");
          code = simple;
          pos += 2;
        }
        if (code === 0) throw nul(path(), decode);
        unit(code, decode);
        if (decode) out += String.fromCharCode(code);
        length++;
        runStart = pos;
      } else if (c >= 0xd800 && c <= 0xdfff) {
        unit(c, decode);
        length++;
        pos++;
      } else {
        if (pendingHigh) throw surrogate(path(), decode);
        // A run of ordinary characters at native speed.
        PLAIN.lastIndex = pos;
        PLAIN.test(text);
        length += PLAIN.lastIndex - pos;
        pos = PLAIN.lastIndex;
      }
      if (length > limits.maxStringLength) throw longer(path(), length, limits, decode);
    }
    return decode ? out : length;
  };
  const digits = () => {
    const from = pos;
    while (pos < n && text.charCodeAt(pos) >= 0x30 && text.charCodeAt(pos) <= 0x39) pos++;
    if (pos === from) throw malformed("Bad number");
  };
  const readNumber = () => {
    const start = pos;
    if (text.charCodeAt(pos) === 0x2d) pos++;
    if (text.charCodeAt(pos) === 0x30) pos++;
    else digits();
    if (text.charCodeAt(pos) === 0x2e) {
      pos++;
      digits();
    }
    let exponent = false;
    const e = text.charCodeAt(pos);
    if (e === 0x65 || e === 0x45) {
      exponent = true;
      pos++;
      const sign = text.charCodeAt(pos);
      if (sign === 0x2b || sign === 0x2d) pos++;
      digits();
    }
    // Only an exponent or more than 308 digits can exceed a double.
    if (exponent || pos - start > 308) {
      const token = text.slice(start, pos);
      if (!Number.isFinite(Number(token))) throw infinite(pathOf(frames), token);
    }
  };
  const literal = (word: string) => {
    if (text.startsWith(word, pos)) pos += word.length;
    else throw malformed(`Unexpected '${text[pos]}'`);
  };
  const here = () => pathOf(frames);

  // Value, then what may follow it, until the top-level value ends.
  for (;;) {
    skipSpace();
    if (pos >= n) throw malformed("Unexpected end");
    const c = text.charCodeAt(pos);
    let opened = false;
    if (c === 0x7b || c === 0x5b) {
      if (frames.length >= limits.maxJsonDepth) throw deeper(here(), limits);
      const array = c === 0x5b;
      frames.push({ array, at: undefined, keys: array ? undefined : [] });
      pos++;
      skipSpace();
      if (text.charCodeAt(pos) === (array ? 0x5d : 0x7d)) {
        pos++;
        frames.pop();
      } else opened = true;
    } else if (c === 0x22) {
      readString(false);
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      readNumber();
    } else if (c === 0x74) literal("true");
    else if (c === 0x66) literal("false");
    else if (c === 0x6e) literal("null");
    else throw malformed(`Unexpected '${text[pos]}'`);

    // After a value (or just inside a non-empty container): find the next value.
    let next = opened;
    while (!next) {
      const top = frames[frames.length - 1];
      skipSpace();
      if (top === undefined) {
        if (pos < n) throw malformed("Unexpected text after the JSON value");
        return;
      }
      const d = text.charCodeAt(pos);
      if (d === 0x2c) {
        pos++;
        next = true;
      } else if (d === (top.array ? 0x5d : 0x7d)) {
        pos++;
        frames.pop();
      } else throw malformed(`Expected ',' or '${top.array ? "]" : "}"}'`);
    }
    const top = frames[frames.length - 1]!;
    if (top.array) {
      top.at = top.at === undefined ? 0 : (top.at as number) + 1;
      continue;
    }
    // An object member: its key, then ':'.
    skipSpace();
    if (text.charCodeAt(pos) !== 0x22) throw malformed("Expected a key");
    const key = readString(true) as string;
    let keys = top.keys!;
    top.at = key;
    if (key === "__proto__") throw proto(here());
    if (Array.isArray(keys) && keys.length >= 16) keys = top.keys = new Set(keys);
    if (Array.isArray(keys) ? keys.includes(key) : keys.has(key)) throw duplicate(here());
    if (Array.isArray(keys)) keys.push(key);
    else keys.add(key);
    if ((Array.isArray(keys) ? keys.length : keys.size) > limits.maxObjectKeys) throw wider(pathOf(frames.slice(0, -1)), limits);
    skipSpace();
    if (text.charCodeAt(pos) !== 0x3a) throw malformed("Expected ':'");
    pos++;
  }
}

/**
 * Parses JSON text under the rules above: `MalformedJson` (with
 * JSON.parse's own words) when it is not JSON, even if a refused value comes
 * first in it; a `BatonError` naming the first refused value; else the value.
 */
export function parseJsonText(text: string, limits: JsonLimits): unknown {
  try {
    checkJsonText(text, limits);
  } catch (error) {
    try {
      JSON.parse(text);
    } catch (syntax) {
      throw new MalformedJson((syntax as Error).message);
    }
    if (error instanceof MalformedJson) throw new MalformedJson(`${error.message} (the scanner and JSON.parse disagree; please report it)`);
    throw error;
  }
  return JSON.parse(text) as unknown;
}

const ESCAPES: Record<number, number> = { 0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f, 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09 };

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Checks a parsed value (a project's middleware may have changed it) against
 * the same rules and limits, without recursion. Duplicate keys and number
 * text are gone by then; non-finite numbers are refused instead.
 */
export function checkJsonValue(value: unknown, limits: JsonLimits): void {
  interface Item {
    value: unknown;
    depth: number;
    parent: Item | undefined;
    at: string | number | undefined;
  }
  const pathTo = (item: Item, last?: string) => {
    const chain: Frame[] = [];
    for (let i: Item | undefined = item; i !== undefined; i = i.parent) chain.unshift({ array: false, at: i.at, keys: undefined });
    return pathOf(chain, last);
  };
  const checkString = (s: string, item: Item, key?: string) => {
    const isKey = key !== undefined;
    const path = () => pathTo(item);
    if (s.length > limits.maxStringLength) throw longer(path(), s.length, limits, isKey);
    if (s.includes("\u0000")) throw nul(path(), isKey);
    if (LONE_SURROGATE.test(s)) throw surrogate(path(), isKey);
  };
  const stack: Item[] = [{ value, depth: 0, parent: undefined, at: undefined }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    const v = item.value;
    if (typeof v === "string") checkString(v, item);
    else if (typeof v === "number") {
      if (!Number.isFinite(v)) throw infinite(pathTo(item), String(v));
    } else if (typeof v === "object" && v !== null) {
      const depth = item.depth + 1;
      if (depth > limits.maxJsonDepth) throw deeper(pathTo(item), limits);
      if (Array.isArray(v)) {
        v.forEach((element, index) => stack.push({ value: element, depth, parent: item, at: index }));
      } else {
        const keys = Object.keys(v);
        if (keys.length > limits.maxObjectKeys) throw wider(pathTo(item), limits);
        for (const key of keys) {
          if (key === "__proto__") throw proto(pathTo(item, key));
          checkString(key, item, key);
          stack.push({ value: (v as Record<string, unknown>)[key], depth, parent: item, at: key });
        }
      }
    }
  }
}
