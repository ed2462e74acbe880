/**
 * Request parsing at the edge: JSON bodies read strictly (json.ts) and
 * checked through zod, query strings through zod.
 *
 * A JSON body must be sent as `application/json` (or `application/<x>+json`)
 * in UTF-8: any other type is refused with 415, so that a web page cannot
 * make a browser send Baton a request without a CORS preflight (a
 * `text/plain` POST needs none). An empty body with no type stands for `{}`.
 */
import type { Context, HonoRequest, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { z } from "zod";
import { BatonError, ErrorCode } from "../core/errors.ts";
import type { RequestLimits } from "./deps.ts";
import { zodMessage } from "./errors.ts";
import { checkJsonValue, MalformedJson, parseJsonText } from "./json.ts";
import { inScope } from "./schemas.ts";

/** The limits each request is read with, set by `requestLimits` in front of every route. */
const limitsOf = new WeakMap<Context, RequestLimits>();

/**
 * Used only when a request skipped `requestLimits` (never in createApp);
 * the defaults of src/config.ts.
 */
const FALLBACK_LIMITS: RequestLimits = {
  maxJsonDepth: 100,
  maxStringLength: 4 * 1024 * 1024,
  maxObjectKeys: 10_000,
  maxIdsPerRequest: 1_000,
  maxFilterKeys: 100,
};

/** Installed first by createApp: the limits of this server for every request. */
export const requestLimits =
  (limits: RequestLimits): MiddlewareHandler =>
  async (c, next) => {
    limitsOf.set(c, limits);
    await next();
  };

/** JSON bodies read by `readJson`, with the limits they were read under (parse() reads them as JSON, not as query text). */
const fromBody = new WeakMap<object, RequestLimits>();

/**
 * What a request's body was when it entered the project's middleware, so a
 * body that middleware changes is the one the API reads. It may replace
 * `c.req.raw`, or change the object `c.req.json()` gave it, as the official
 * server's own test app does: that object is kept, so every `c.req.json()`
 * of the request, and the route, get the same one. `copy` keeps the bytes
 * as sent, so they are checked even when middleware parsed them first.
 */
interface Entered {
  raw: Request;
  copy: Request | undefined;
  json: Promise<unknown> | undefined;
}
const entered = new WeakMap<HonoRequest, Entered>();

/** Installed in front of the project's own app (`http.app`). */
export const followBodyChanges: MiddlewareHandler = async (c, next) => {
  const raw = c.req.raw;
  const seen: Entered = { raw, copy: raw.body === null ? undefined : raw.clone(), json: undefined };
  entered.set(c.req, seen);
  const json = c.req.json.bind(c.req);
  (c.req as { json: () => Promise<unknown> }).json = () => (seen.json ??= json());
  await next();
};

const JSON_TYPE = /^application\/([\w.-]+\+)?json$/;

/** 415 unless the type is JSON in UTF-8. */
function checkContentType(header: string | null): void {
  const [media = "", ...parameters] = (header ?? "").split(";");
  const type = media.trim().toLowerCase();
  if (!JSON_TYPE.test(type)) {
    throw new HTTPException(415, {
      message: `Request body must be JSON sent with Content-Type: application/json${header === null ? " (none was given)" : ` (got '${header.slice(0, 100)}')`}. Other types are refused so that a web page cannot send requests to Baton without a CORS preflight.`,
    });
  }
  for (const parameter of parameters) {
    const [name = "", value = ""] = parameter.split("=");
    if (name.trim().toLowerCase() !== "charset") continue;
    const charset = value.trim().replace(/^"(.*)"$/, "$1").toLowerCase();
    if (charset !== "utf-8" && charset !== "utf8") {
      throw new HTTPException(415, { message: `Request body must be UTF-8 (charset=${charset.slice(0, 40)} is not supported); send UTF-8 with charset=utf-8 or no charset.` });
    }
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads JSON bytes as sent: type and charset (415), UTF-8 (400), syntax
 * (400), then what cannot be stored faithfully and the limits (422).
 */
function readBytes(headers: Headers, bytes: ArrayBuffer, limits: RequestLimits): unknown {
  if (bytes.byteLength === 0) return {};
  checkContentType(headers.get("content-type"));
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new HTTPException(400, { message: "Request body is not valid UTF-8; Baton reads JSON bodies as UTF-8 and does not replace bad bytes." });
  }
  if (text.trim() === "") return {};
  try {
    return parseJsonText(text, limits);
  } catch (error) {
    if (error instanceof MalformedJson) throw new HTTPException(400, { message: `Request body is not valid JSON: ${error.message}` });
    throw error;
  }
}

/** One read per request: a second `readJson` gets the same value (or error), as `c.req.json()` does. */
const read = new WeakMap<Context, Promise<unknown>>();

export function readJson(c: Context): Promise<unknown> {
  let value = read.get(c);
  if (value === undefined) read.set(c, (value = readOnce(c)));
  return value;
}

async function readOnce(c: Context): Promise<unknown> {
  const limits = limitsOf.get(c) ?? FALLBACK_LIMITS;
  const seen = entered.get(c.req);
  let value: unknown;
  if (seen === undefined) {
    value = readBytes(c.req.raw.headers, await c.req.arrayBuffer(), limits);
  } else if (c.req.raw !== seen.raw && !c.req.raw.bodyUsed) {
    // The project's middleware sent the API a new request: read it as sent.
    value = readBytes(c.req.raw.headers, await c.req.raw.arrayBuffer(), limits);
  } else {
    const sent = readBytes(seen.raw.headers, seen.copy === undefined ? new ArrayBuffer(0) : await seen.copy.arrayBuffer(), limits);
    if (seen.json === undefined) value = sent;
    else {
      // The body as sent was faithful; the object middleware parsed (and may have changed) must be too.
      try {
        value = await seen.json;
      } catch (error) {
        throw new HTTPException(400, { message: `Request body is not valid JSON: ${(error as Error).message}` });
      }
      checkJsonValue(value, limits);
      value ??= {};
    }
  }
  if (typeof value === "object" && value !== null) fromBody.set(value, limits);
  return value;
}

/**
 * Parses with zod. A value `readJson` returned is a JSON body: numbers must
 * be numbers, and id lists and filters are held to the request's limits. Any
 * other value (query strings) reads numbers from text.
 */
export function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const limits = typeof value === "object" && value !== null ? fromBody.get(value) : undefined;
  const result = inScope({ fromJson: limits !== undefined, limits }, () => schema.safeParse(value));
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
