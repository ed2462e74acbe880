/**
 * Turns what a graph produces (LangChain messages, class instances, dates)
 * into plain JSON in the shape the official server sends: a message becomes
 * a dict with its `type` ("human", "ai", "tool", ...) and the fields it was
 * built with.
 */
import { isBaseMessage, type BaseMessage } from "@langchain/core/messages";

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
