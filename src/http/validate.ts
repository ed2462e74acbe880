/** Request parsing at the edge: JSON bodies and query strings through zod. */
import type { Context, HonoRequest, MiddlewareHandler } from "hono";
import type { z } from "zod";
import { BatonError, ErrorCode } from "../core/errors.ts";
import { hasEscapedNul } from "../core/serialize.ts";
import { zodMessage } from "./errors.ts";

/**
 * What a request's body was when it entered the project's middleware, so a
 * body that middleware changes is the one the API reads. It may replace
 * `c.req.raw`, or change the object `c.req.json()` gave it, as the official
 * server's own test app does: that object is kept, so every `c.req.json()`
 * of the request, and the route, get the same one.
 */
interface Entered {
  raw: Request;
  json: Promise<unknown> | undefined;
}
const entered = new WeakMap<HonoRequest, Entered>();

/** Installed in front of the project's own app (`http.app`). */
export const followBodyChanges: MiddlewareHandler = async (c, next) => {
  const seen: Entered = { raw: c.req.raw, json: undefined };
  entered.set(c.req, seen);
  const json = c.req.json.bind(c.req);
  (c.req as { json: () => Promise<unknown> }).json = () => (seen.json ??= json());
  await next();
};

export async function readJson(c: Context): Promise<unknown> {
  const seen = entered.get(c.req);
  if (seen !== undefined && c.req.raw !== seen.raw && !c.req.raw.bodyUsed) return parseJson(await c.req.raw.text());
  if (seen?.json === undefined) return parseJson(await c.req.text());
  let value: unknown;
  try {
    value = await seen.json;
  } catch (error) {
    throw new BatonError(ErrorCode.invalid, `Request body is not valid JSON: ${(error as Error).message}`);
  }
  refuseNul(JSON.stringify(value) ?? "");
  return value ?? {};
}

function refuseNul(text: string): void {
  if (hasEscapedNul(text)) {
    // Postgres (scale-out) cannot store U+0000 in JSON; refused on every
    // backend alike, so a project behaves the same embedded and scaled out.
    throw new BatonError(ErrorCode.invalid, "Request body contains the NUL character (\\u0000) in a string; Baton does not store it. Remove it or replace it.");
  }
}

function parseJson(text: string): unknown {
  if (text.trim() === "") return {};
  refuseNul(text);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new BatonError(ErrorCode.invalid, `Request body is not valid JSON: ${(error as Error).message}`);
  }
}

export function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new BatonError(ErrorCode.invalid, `Invalid request: ${zodMessage(result.error)}`);
  return result.data;
}

export async function body<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  return parse(schema, await readJson(c));
}

export const flag = (value: string | undefined): boolean => value === "1" || value === "true" || value === "True";

/** Ids in paths must be UUIDs; anything else is a clear 422, not a lookup. */
export function uuidParam(c: Context, name: string): string {
  const value = c.req.param(name) ?? "";
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)) {
    throw new BatonError(ErrorCode.invalid, `Path parameter ${name} must be a UUID, got '${value.slice(0, 80)}'.`);
  }
  return value.toLowerCase();
}
