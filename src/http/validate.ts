/** Request parsing at the edge: JSON bodies and query strings through zod. */
import type { Context } from "hono";
import type { z } from "zod";
import { BatonError, ErrorCode } from "../core/errors.ts";
import { hasEscapedNul } from "../core/serialize.ts";
import { zodMessage } from "./errors.ts";

export async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === "") return {};
  if (hasEscapedNul(text)) {
    // Postgres (scale-out) cannot store U+0000 in JSON; refused on every
    // backend alike, so a project behaves the same embedded and scaled out.
    throw new BatonError(ErrorCode.invalid, "Request body contains the NUL character (\\u0000) in a string; Baton does not store it. Remove it or replace it.");
  }
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
