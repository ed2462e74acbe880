/**
 * Turns what a graph produces (LangChain messages, class instances, dates)
 * into plain JSON in the shape the official server sends: a message becomes
 * a dict with its `type` ("human", "ai", "tool", ...) and the fields it was
 * built with.
 */
import { isBaseMessage, type BaseMessage } from "@langchain/core/messages";
import { BatonError, ErrorCode } from "./errors.ts";
import type { RunOutcome } from "./ports.ts";

const MESSAGE_FIELDS = [
  "content",
  "additional_kwargs",
  "response_metadata",
  "name",
  "id",
  "tool_calls",
  "invalid_tool_calls",
  "usage_metadata",
  "tool_call_chunks",
  "tool_call_id",
  "status",
  "artifact",
  "role",
] as const;

/**
 * What the official server sends (`toDict()`: the fields a message was
 * built with, then its type), read straight from the fields: `toDict()`
 * costs about ten times as much, on every streamed token.
 */
function messageToDict(message: BaseMessage): Record<string, unknown> {
  const dict: Record<string, unknown> = {};
  const source = message as unknown as Record<string, unknown>;
  for (const field of MESSAGE_FIELDS) {
    const value = source[field];
    if (value !== undefined) dict[field] = toWire(value);
  }
  dict.type = message.getType();
  return dict;
}

export function toWire(value: unknown): unknown {
  if (value === null || value === undefined) return value ?? null;
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
      return value;
    case "bigint":
      return value.toString();
    case "function":
    case "symbol":
    case "undefined":
      return undefined;
    case "object":
      break;
  }
  if (Array.isArray(value)) return value.map((item) => toWire(item) ?? null);
  if (isBaseMessage(value)) return messageToDict(value);
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Map) return toWire(Object.fromEntries(value));
  if (value instanceof Set) return toWire([...value]);
  const proto = Object.getPrototypeOf(value) as unknown;
  const holder = value as { toJSON?: () => unknown };
  if (proto !== Object.prototype && proto !== null && typeof holder.toJSON === "function") {
    return toWire(holder.toJSON());
  }
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    // Undefined fields are left out, as JSON.stringify leaves them out.
    if (item === undefined) continue;
    const converted = toWire(item);
    if (converted !== undefined) out[key] = converted;
  }
  return out;
}

/**
 * `\u0000` escapes in JSON text: `\u0000` after an even run of backslashes
 * (an odd run would make it the text "\u0000", not U+0000). Postgres JSONB
 * cannot hold U+0000: requests carrying it are refused at the edge, and a
 * graph's own output is stored with U+FFFD instead.
 */
const ESCAPED_NUL = /(?<!\\)((?:\\\\)*)\\u0000/g;

/** The same pattern without the global flag, so `test` keeps no state between calls. */
const HAS_ESCAPED_NUL = new RegExp(ESCAPED_NUL.source);

/** Whether JSON text contains U+0000 in a string. */
export const hasEscapedNul = (json: string): boolean => json.includes("\\u0000") && HAS_ESCAPED_NUL.test(json);

/** JSON text with every U+0000 in its strings turned into U+FFFD. */
export const replaceEscapedNul = (json: string): string => (json.includes("\\u0000") ? json.replace(ESCAPED_NUL, "$1\\ufffd") : json);

/**
 * Strings Baton cannot store the same on every backend: a lone UTF-16
 * surrogate (Postgres JSONB refuses its escape, UTF-8 cannot encode it) and
 * U+0000 (JSONB and Postgres text refuse it). The HTTP edge refuses both in
 * requests; a graph's output holding one is the run's own error on every
 * backend (`findUnstorable`, `UnstorableOutputError`), so SQLite never
 * keeps what Postgres would refuse.
 */
export interface Unstorable {
  /** What was found, for messages: "a lone UTF-16 surrogate" or "U+0000 (NUL)". */
  what: string;
  /** Where: keys and indexes joined with dots (`values.messages.0.content`); a key holding it ends the path. */
  path: string;
}

/** With the `u` flag a well-paired surrogate is one code point: only lone ones match. U+0000 is the point of it. */
// eslint-disable-next-line no-control-regex
const UNSTORABLE_CHAR = /[\u0000\ud800-\udfff]/u;
// eslint-disable-next-line no-control-regex
const UNSTORABLE_CHARS = /[\u0000\ud800-\udfff]/gu;

const describeChar = (text: string): string => (text.includes("\u0000") && !/[\ud800-\udfff]/u.test(text) ? "U+0000 (NUL)" : "a lone UTF-16 surrogate");

/** Whether a string holds a lone surrogate or U+0000. */
export const isUnstorableString = (text: string): boolean => UNSTORABLE_CHAR.test(text);

/** `text` with every lone surrogate and U+0000 replaced by U+FFFD (for error messages, which are recorded whatever they hold). */
export const replaceUnstorable = (text: string): string => (UNSTORABLE_CHAR.test(text) ? text.replace(UNSTORABLE_CHARS, "\ufffd") : text);

/**
 * The first lone surrogate or U+0000 in a JSON-like value (its strings and
 * its keys), or undefined. Iterative, so a deep value cannot overflow the
 * stack; each object is visited once.
 *
 * A LangChain-serialized object (`{lc, type: "constructor", kwargs}`, as
 * checkpoints hold messages) is walked through its `kwargs` without naming
 * them, so a message's text reads `messages.0.content`, as on the wire.
 */
export function findUnstorable(value: unknown, root = ""): Unstorable | undefined {
  const seen = new Set<object>();
  const stack: [unknown, string][] = [[value, root]];
  const join = (path: string, key: string | number) => (path === "" ? String(key) : `${path}.${key}`);
  while (stack.length > 0) {
    const [item, path] = stack.pop()!;
    if (typeof item === "string") {
      if (UNSTORABLE_CHAR.test(item)) return { what: describeChar(item), path: path === "" ? "(the value itself)" : path };
      continue;
    }
    if (typeof item !== "object" || item === null || seen.has(item)) continue;
    seen.add(item);
    if (Array.isArray(item)) {
      for (let index = item.length - 1; index >= 0; index -= 1) stack.push([item[index], join(path, index)]);
      continue;
    }
    const record = item as Record<string, unknown>;
    if (record.lc !== undefined && record.type === "constructor" && typeof record.kwargs === "object" && record.kwargs !== null) {
      stack.push([record.kwargs, path]);
      continue;
    }
    const entries = Object.entries(record);
    for (const [key] of entries) {
      if (UNSTORABLE_CHAR.test(key)) return { what: describeChar(key), path: join(path, `${JSON.stringify(replaceUnstorable(key))} (a key)`) };
    }
    for (let index = entries.length - 1; index >= 0; index -= 1) {
      const [key, child] = entries[index]!;
      stack.push([child, join(path, key)]);
    }
  }
  return undefined;
}

/** A graph produced a value Baton cannot store; the run ends with this error (not retried). */
export class UnstorableOutputError extends BatonError {
  override name = "UnstorableOutputError";
  readonly found: Unstorable;
  /** `subject` names what held it, for other writes a graph makes (e.g. "The item the graph put in the store"). */
  constructor(found: Unstorable, subject = "The graph's output") {
    super(ErrorCode.invalid, `${subject} contains ${found.what} at ${found.path}; Baton cannot store it. Remove or replace it in the graph (for example with U+FFFD).`);
    this.found = found;
  }
}

/**
 * JSON escapes JSON.stringify writes for a lone surrogate or U+0000 (after an
 * even run of backslashes). A well-paired surrogate is written as itself, never
 * escaped, so any `\ud800`-`\udfff` escape is a lone one.
 */
const UNSTORABLE_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;
const BACKSLASH_U = Buffer.from("\\u");

/**
 * What `findUnstorable` finds in serialized JSON (UTF-8 bytes, as the
 * checkpoint serializer writes them), or undefined. Most values hold no
 * `\u` escape at all: that is one native byte search, with no decoding.
 * `root` names the top of the value in the path.
 */
export function findUnstorableInJson(bytes: Uint8Array, root: string, rename?: (path: string) => string): Unstorable | undefined {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.indexOf(BACKSLASH_U) === -1) return undefined;
  const text = buffer.toString("utf8");
  if (!UNSTORABLE_ESCAPE.test(text)) return undefined;
  const found = findUnstorable(JSON.parse(text) as unknown, root) ?? { what: "a lone UTF-16 surrogate or U+0000", path: root || "(the value itself)" };
  return rename === undefined ? found : { ...found, path: rename(found.path) };
}

/** LangGraph's error channel: a task's error is kept as it was thrown (checkpoints hold any text), never refused. */
const ERROR_CHANNEL = "__error__";

/**
 * Refuses a checkpoint whose state holds a lone surrogate or U+0000: the
 * saver throws before writing, so the run ends with that error and the
 * thread keeps its last storable state. Both backends call it, so SQLite
 * refuses what Postgres could not keep in a thread's or a run's record.
 * Only JSON-serialized parts are read (`type` "json").
 */
export function refuseUnstorableCheckpoint(row: { type: string; checkpoint: Uint8Array; metadata: Uint8Array }): void {
  if (row.type !== "json") return;
  const found =
    findUnstorableInJson(row.checkpoint, "", (path) => path.replace(/^channel_values(?=\.|$)/, "values")) ?? findUnstorableInJson(row.metadata, "metadata");
  if (found !== undefined) throw new UnstorableOutputError(found);
}

/** As `refuseUnstorableCheckpoint`, for a task's pending writes (a node's return, an interrupt). */
export function refuseUnstorableWrites(rows: readonly { channel: string; type: string; value: Uint8Array }[]): void {
  for (const row of rows) {
    if (row.type !== "json" || row.channel === ERROR_CHANNEL) continue;
    const root = row.channel === "__interrupt__" ? "interrupt" : row.channel.startsWith("__") ? row.channel : `values.${row.channel}`;
    const found = findUnstorableInJson(row.value, root);
    if (found !== undefined) throw new UnstorableOutputError(found);
  }
}

/** A run's recorded failure: `{error, message}` under `__error__`, as the wire carries it. */
export interface RunFailure {
  error: string;
  message: string;
}

/**
 * The outcome a worker records, made storable alike on every backend:
 * error texts (the graph's own exception messages) keep their words with a
 * lone surrogate or U+0000 replaced by U+FFFD; an outcome whose values,
 * interrupts or output still hold one (a project's own checkpointer let it
 * through) becomes the run's error instead. `failure` is set when the
 * outcome was turned into an error, for the worker to publish.
 */
export function storableOutcome(outcome: RunOutcome): { outcome: RunOutcome; failure?: RunFailure } {
  if (outcome.erase) return { outcome };
  let clean = outcome;
  const output = outcome.output as { __error__?: Partial<RunFailure> } | null;
  const recorded = output !== null && typeof output === "object" ? output.__error__ : undefined;
  const dirtyError = outcome.error !== null && isUnstorableString(outcome.error);
  const dirtyFailure = recorded !== undefined && [recorded.error, recorded.message].some((text) => typeof text === "string" && isUnstorableString(text));
  if (dirtyError || dirtyFailure) {
    clean = {
      ...outcome,
      error: outcome.error === null ? null : replaceUnstorable(outcome.error),
      output:
        recorded === undefined
          ? outcome.output
          : {
              ...output,
              __error__: {
                ...recorded,
                ...(typeof recorded.error === "string" ? { error: replaceUnstorable(recorded.error) } : {}),
                ...(typeof recorded.message === "string" ? { message: replaceUnstorable(recorded.message) } : {}),
              },
            },
    };
  }
  const inValues = findUnstorable(clean.thread.values, "values");
  const found = inValues ?? findUnstorable(clean.thread.interrupts, "interrupts") ?? findUnstorable(clean.output, "output");
  if (found === undefined) return { outcome: clean };
  const error = new UnstorableOutputError(found);
  const failure = { error: error.name, message: error.message };
  return {
    failure,
    outcome: {
      status: "error",
      error: failure.message,
      erase: false,
      output: { __error__: failure },
      thread: { values: inValues === undefined ? clean.thread.values : null, interrupts: {}, status: "error" },
    },
  };
}
