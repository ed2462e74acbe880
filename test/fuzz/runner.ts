/**
 * Sends generated requests to a server and checks each answer against the
 * acceptance rule of docs/testing.md ("API fuzzing").
 */
import type { Client } from "@langchain/langgraph-sdk";
import { preview, RAW_TEXTS, type Mutation } from "./arbitraries.ts";
import type { Operation, Spec } from "./spec.ts";

/** Client-error answers accepted even where an operation does not list them (each is counted). */
export const CLIENT_ERRORS = new Set([400, 404, 409, 413, 415, 422, 429]);

export interface FuzzRequest {
  op: Operation;
  path: Record<string, string>;
  query: [string, string][];
  body?: unknown;
  mutation?: Mutation;
  /**
   * The body sent as something other than UTF-8 JSON: `text/plain` (what a
   * web page may send without a preflight), no Content-Type, a declared
   * Latin-1 charset, or invalid UTF-8 bytes. Never to be accepted.
   */
  encoding?: Encoding;
}

export const ENCODINGS = ["text/plain", "no content type", "charset=iso-8859-1", "invalid UTF-8"] as const;
export type Encoding = (typeof ENCODINGS)[number];

export interface Violation {
  op: string;
  /** Same signature, same defect: what the report is deduplicated by. */
  signature: string;
  rule: "5xx" | "unlisted status" | "accepted a type-breaking value" | "accepted a body that is not UTF-8 JSON" | "response schema" | "error body" | "no answer";
  request: string;
  status?: number;
  answer: string;
}

/**
 * A documented deliberate difference (docs/compatibility.md): schema errors of
 * a 2xx answer at `at` (an ajv instance path, as a regular expression) for
 * operations matching `op` are not violations. `row` names the row.
 */
export interface Exclusion {
  op: RegExp;
  at: RegExp;
  row: string;
  /** Only when the value there is this (e.g. null). */
  when?: (value: unknown) => boolean;
}

export interface Ids {
  thread: string;
  /** A thread stopped at an interrupt (its state has a task), and its checkpoint. */
  interrupted: string;
  interruptedCheckpoint: string;
  assistant: string;
  run: string;
  checkpoint: string;
  graph: string;
  /** A cron on `thread` whose schedule never comes round during a test (yearly). */
  cron: string;
}

/** Fresh records for one operation's requests (an earlier operation may have deleted the last ones). */
export async function freshIds(client: Client): Promise<Ids> {
  const thread = await client.threads.create({ metadata: { fuzz: "fixture" } });
  const run = await client.runs.create(thread.thread_id, "echo", { input: { messages: [{ role: "user", content: "hi" }] } });
  await client.runs.join(thread.thread_id, run.run_id);
  const state = await client.threads.getState(thread.thread_id);
  const assistant = await client.assistants.create({ graphId: "echo", metadata: { fuzz: "fixture" } });
  const interrupted = await client.threads.create();
  await client.runs.wait(interrupted.thread_id, "ask", { input: { messages: [{ role: "user", content: "hi" }] } });
  const interruptedState = await client.threads.getState(interrupted.thread_id);
  const cron = await client.crons.createForThread(thread.thread_id, "echo", { schedule: "0 0 1 1 *", metadata: { fuzz: "fixture" } });
  return {
    thread: thread.thread_id,
    interrupted: interrupted.thread_id,
    interruptedCheckpoint: interruptedState.checkpoint.checkpoint_id!,
    assistant: assistant.assistant_id, run: run.run_id, checkpoint: state.checkpoint.checkpoint_id!, graph: "echo", cron: cron.cron_id };
}

/**
 * The JSON-RPC operations (MCP, A2A): their errors are JSON-RPC error
 * objects, a notification is acknowledged with 202, and JSON-RPC allows a
 * number (or null, for a notification) as `id` where the spec says string.
 */
export const isJsonRpc = (op: Operation): boolean => /^\/(mcp|a2a)(\/|$)/.test(op.path);

/** A JSON-RPC error answer: `{"jsonrpc": "2.0", "error": {"code": <integer>, "message": <text>}}`. */
function isRpcError(body: unknown): boolean {
  const error = (body as { jsonrpc?: unknown; error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return (body as { jsonrpc?: unknown } | undefined)?.jsonrpc === "2.0" && Number.isInteger(error?.code) && typeof error?.message === "string" && error.message !== "";
}

/** Request headers an operation declares required (Accept on the JSON-RPC operations), with a value it accepts. */
function declaredHeaders(op: Operation): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const p of op.parameters) {
    if (p.in !== "header" || !p.required) continue;
    const values = p.schema.enum as string[] | undefined;
    headers[p.name] = values?.[0] ?? (p.name.toLowerCase() === "accept" ? "application/json, text/event-stream" : "x");
  }
  return headers;
}

const STREAM_BYTES = 64 * 1024;
/** How long a stream may stay quiet before the fuzzer stops reading it (it is not an error: see readSome). */
const STREAM_QUIET_MS = 500;
/** A bound on one answer, so a hung request is reported instead of hanging the suite. */
const ANSWER_TIMEOUT_MS = 45_000;

function substitute(text: string, ids: Ids): string {
  return text
    .replaceAll("@icheckpoint", ids.interruptedCheckpoint)
    .replaceAll("@interrupted", ids.interrupted)
    .replaceAll("@thread", ids.thread)
    .replaceAll("@assistant", ids.assistant)
    .replaceAll("@run", ids.run)
    .replaceAll("@checkpoint", ids.checkpoint)
    .replaceAll("@graph", ids.graph)
    .replaceAll("@cron", ids.cron);
}

export function bodyText(body: unknown, ids: Ids): string {
  const json = JSON.stringify(body) ?? "null";
  return substitute(json, ids).replace(/"\\u0001RAW\((\d+)\)\\u0001"/g, (_, i: string) => RAW_TEXTS[Number(i)]!);
}

export interface Outcome {
  status: number;
  violations: Violation[];
  /** An unlisted client error, for the summary. */
  unlisted?: number;
}

export async function send(
  baseUrl: string,
  spec: Spec,
  request: FuzzRequest,
  ids: Ids,
  exclusions: Exclusion[],
  /** Headers sent with every request (credentials). */
  extraHeaders: Record<string, string> = {},
): Promise<Outcome & { answer?: string }> {
  const { op } = request;
  let path = op.path;
  for (const [name, value] of Object.entries(request.path)) path = path.replace(`{${name}}`, encodePathSegment(substitute(value, ids)));
  const query = new URLSearchParams(request.query.map(([k, v]) => [k, substitute(v, ids)]));
  const url = `${baseUrl}${path}${query.size > 0 ? `?${query}` : ""}`;
  const text = request.body === undefined ? undefined : bodyText(request.body, ids);
  const described =
    `${op.method} ${path}${query.size > 0 ? `?${query}` : ""}${text === undefined ? "" : ` ${previewText(text)}`}` +
    `${request.mutation ? ` [${request.mutation.label}]` : ""}${request.encoding && text !== undefined ? ` [sent as ${request.encoding}]` : ""}`;
  const violation = (rule: Violation["rule"], answer: string, status?: number, detail = answer): Violation => ({
    op: op.id,
    signature: `${rule} ${op.id} ${status ?? "-"} ${normalise(detail)}`,
    rule,
    request: described,
    status,
    answer,
  });

  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), ANSWER_TIMEOUT_MS);
  let status: number;
  let contentType: string;
  let answer: string;
  try {
    const encoded = encode(text, request.encoding);
    const response = await fetch(url, { method: op.method, ...encoded, headers: { ...declaredHeaders(op), ...encoded.headers, ...extraHeaders }, signal: abort.signal });
    status = response.status;
    contentType = response.headers.get("content-type") ?? "";
    answer = contentType.includes("text/event-stream") ? await readSome(response, STREAM_BYTES) : await response.text();
  } catch (error) {
    clearTimeout(timer);
    return { status: 0, violations: [violation("no answer", abort.signal.aborted ? `no answer within ${ANSWER_TIMEOUT_MS} ms` : String(error))] };
  } finally {
    clearTimeout(timer);
    abort.abort();
  }

  const violations: Violation[] = [];
  const listed = op.responses.get(status);
  let unlisted: number | undefined;
  if (status >= 500) violations.push(violation("5xx", previewText(answer), status));
  else if (listed === undefined) {
    if (CLIENT_ERRORS.has(status)) unlisted = status;
    else if (!(op.id === "POST /threads/{thread_id}/runs/{run_id}/cancel" && status === 202) && !(isJsonRpc(op) && status === 202)) {
      // 202: docs/compatibility.md row "`cancel?wait=0`"; a JSON-RPC notification's acknowledgement.
      violations.push(violation("unlisted status", previewText(answer), status));
    }
  }
  if (status >= 200 && status < 300 && request.encoding !== undefined && text !== undefined) {
    violations.push(violation("accepted a body that is not UTF-8 JSON", previewText(answer), status, request.encoding));
  }
  // JSON-RPC allows a number or null (a notification) as id.
  const rpcId = isJsonRpc(op) && /^id = (null|-?[\d.e+-]+)$/.test(request.mutation?.label ?? "");
  if (status >= 200 && status < 300 && request.mutation?.typeBroken && !rpcId) {
    violations.push(violation("accepted a type-breaking value", previewText(answer), status, request.mutation.label.replace(/ = .*/, "")));
  }
  if (status >= 400 && status < 500) {
    const detail = parseJson(answer) as { detail?: unknown } | undefined;
    const described = typeof detail?.detail === "string" && detail.detail !== "";
    if (!described && !(isJsonRpc(op) && isRpcError(detail))) violations.push(violation("error body", previewText(answer), status));
  }
  const schema = listed?.json;
  if (status >= 200 && status < 300 && schema !== undefined && contentType.includes("application/json")) {
    const parsed = parseJson(answer);
    const validate = spec.validator(schema);
    if (!validate(parsed)) {
      // `select` asks for some fields only: the spec's schema cannot say so, so missing ones are not errors then.
      const selected = Array.isArray((request.body as { select?: unknown } | undefined)?.select);
      const errors = (validate.errors ?? []).filter(
        (e) =>
          !(selected && e.keyword === "required") &&
          !exclusions.some((x) => x.op.test(op.id) && x.at.test(e.instancePath) && (x.when === undefined || x.when(pointer(parsed, e.instancePath)))),
      );
      // anyOf/oneOf report their branches' errors and then their own; with every branch excused, so is the alternative.
      const real = errors.filter((e) => !(e.keyword === "anyOf" || e.keyword === "oneOf") || errors.some((o) => o !== e && o.instancePath.startsWith(e.instancePath) && o.keyword !== e.keyword));
      // One violation per kind of error (array indices folded), so each defect is reported, and excused, on its own.
      const kinds = new Set(real.map((e) => `${(e.instancePath || "/").replace(/\/\d+(?=\/|$)/g, "/N")} ${e.message ?? e.keyword}`));
      for (const kind of [...kinds].sort()) violations.push(violation("response schema", `${kind} in ${previewText(answer)}`, status, kind));
    }
  }
  return { status, violations, unlisted, answer };
}

function encode(text: string | undefined, encoding: Encoding | undefined): { headers: Record<string, string>; body?: string | Uint8Array<ArrayBuffer> } {
  if (text === undefined) return { headers: {} };
  switch (encoding) {
    case undefined:
      return { headers: { "Content-Type": "application/json" }, body: text };
    case "text/plain":
      return { headers: { "Content-Type": "text/plain" }, body: text };
    case "no content type":
      // Bytes, so fetch adds no Content-Type of its own.
      return { headers: {}, body: new TextEncoder().encode(text) };
    case "charset=iso-8859-1":
      return { headers: { "Content-Type": "application/json; charset=iso-8859-1" }, body: text };
    case "invalid UTF-8": {
      // A key holding the byte 0xFF, otherwise valid JSON.
      const utf8 = (t: string) => [...new TextEncoder().encode(t)];
      const bytes = text.startsWith("{") && text !== "{}" ? [...utf8('{"x'), 0xff, ...utf8(`":1,${text.slice(1)}`)] : [...utf8(text), 0xff];
      return { headers: { "Content-Type": "application/json" }, body: new Uint8Array(bytes) };
    }
  }
}

/**
 * The start of an event stream: up to `limit` characters, or what came
 * before it ended or went quiet for STREAM_QUIET_MS (a thread stream stays
 * open for as long as its client wants).
 */
async function readSome(response: Response, limit: number): Promise<string> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let timer: NodeJS.Timeout | undefined;
  try {
    while (text.length < limit) {
      const quiet = new Promise<{ done: true; value: undefined }>((resolve) => (timer = setTimeout(() => resolve({ done: true, value: undefined }), STREAM_QUIET_MS)));
      const { done, value } = await Promise.race([reader.read(), quiet]);
      clearTimeout(timer);
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => undefined);
  }
  return text;
}

/** Percent-encoding that also writes lone surrogates (as their 3-byte forms, invalid UTF-8) instead of throwing. */
function encodePathSegment(text: string): string {
  let out = "";
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (code >= 0xd800 && code <= 0xdfff) out += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join("");
    else out += encodeURIComponent(ch);
  }
  return out;
}

/** Ids, numbers and quoted values out, so one defect gives one signature. */
function normalise(text: string): string {
  return text
    .slice(0, 200)
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, "<id>")
    .replace(/\\?"[^"]*\\?"/g, "<q>")
    .replace(/\d+/g, "<n>");
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function pointer(value: unknown, path: string): unknown {
  let current = value;
  for (const part of path.split("/").slice(1)) current = (current as Record<string, unknown> | undefined)?.[part.replaceAll("~1", "/").replaceAll("~0", "~")];
  return current;
}

function previewText(text: string): string {
  return text.length > 300 ? `${text.slice(0, 297)}… (${text.length} chars)` : text;
}

export { preview };
