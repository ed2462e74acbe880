/**
 * The official Agent Server OpenAPI document, read from outside the
 * repository (`../shared/spec` next to the clone; CI copies it there), and
 * what the fuzzer needs from it: operations, their parameters and body
 * schemas with `$ref`s resolved, and ajv validators for their answers.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";

export type Schema = { [key: string]: unknown };

export interface Parameter {
  name: string;
  in: "path" | "query" | "header" | "cookie";
  required: boolean;
  schema: Schema;
}

export interface Operation {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  /** "POST /threads/{thread_id}/runs" */
  id: string;
  parameters: Parameter[];
  body?: Schema;
  /** Statuses the spec lists for this operation, with the schema of a JSON answer if it gives one. */
  responses: Map<number, { json?: Schema; contentTypes: string[] }>;
}

const REPO_ROOT = resolve(import.meta.dirname, "../..");
export const SPEC_PATH = resolve(REPO_ROOT, "../shared/spec/agent-server-openapi.json");

export interface Spec {
  document: Schema;
  operations: Operation[];
  /** Follows `#/components/...` references (one level at a time; schemas are recursive). */
  deref(schema: unknown): Schema;
  validator(schema: Schema): ValidateFunction;
}

export function loadSpec(): Spec {
  if (!existsSync(SPEC_PATH)) {
    throw new Error(
      `The official OpenAPI document is not at ${SPEC_PATH}. The fuzz tests read it from ../shared/spec next to the repository ` +
        `(CI copies /work/shared there); put agent-server-openapi.json there to run them.`,
    );
  }
  const document = JSON.parse(readFileSync(SPEC_PATH, "utf8")) as Schema;
  const deref = (schema: unknown): Schema => {
    let current = (schema ?? {}) as Schema;
    for (let hops = 0; typeof current.$ref === "string" && hops < 20; hops++) {
      const ref = current.$ref;
      if (!ref.startsWith("#/")) throw new Error(`unsupported $ref ${ref}`);
      let target: unknown = document;
      for (const part of ref.slice(2).split("/")) target = (target as Schema)[part.replaceAll("~1", "/").replaceAll("~0", "~")];
      if (target === undefined) throw new Error(`dangling $ref ${ref}`);
      // Keywords next to a $ref (title, description) add nothing the fuzzer needs.
      const { $ref: _ref, ...rest } = current;
      current = { ...rest, ...(target as Schema) };
    }
    return current;
  };

  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(document.paths as Record<string, Record<string, Schema>>)) {
    for (const method of ["get", "post", "put", "patch", "delete"] as const) {
      const op = item[method];
      if (op === undefined) continue;
      const parameters = ((op.parameters ?? []) as Schema[]).map((p) => {
        const param = deref(p);
        return { name: param.name as string, in: param.in as Parameter["in"], required: param.required === true, schema: deref(param.schema) };
      });
      const content = (deref(op.requestBody).content ?? {}) as Record<string, Schema>;
      const body = content["application/json"]?.schema as Schema | undefined;
      const responses = new Map<number, { json?: Schema; contentTypes: string[] }>();
      for (const [status, response] of Object.entries((op.responses ?? {}) as Record<string, unknown>)) {
        const r = deref(response);
        const types = (r.content ?? {}) as Record<string, Schema>;
        responses.set(Number(status), { json: types["application/json"]?.schema as Schema | undefined, contentTypes: Object.keys(types) });
      }
      const upper = method.toUpperCase() as Operation["method"];
      operations.push({ method: upper, path, id: `${upper} ${path}`, parameters, body, responses });
    }
  }

  // One ajv instance holds the whole document, so response schemas keep their
  // `#/components/...` references (recursive ones included) by pointing into it.
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
  addFormats(ajv);
  const SPEC_ID = "https://baton.test/agent-server-openapi.json";
  ajv.addSchema({ $id: SPEC_ID, components: document.components }, SPEC_ID);
  const rewrite = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(rewrite);
    if (value === null || typeof value !== "object") return value;
    const out: Schema = {};
    for (const [k, v] of Object.entries(value)) out[k] = k === "$ref" && typeof v === "string" && v.startsWith("#/") ? `${SPEC_ID}${v}` : rewrite(v);
    return out;
  };
  const cache = new Map<Schema, ValidateFunction>();
  const validator = (schema: Schema) => {
    let v = cache.get(schema);
    if (v === undefined) {
      v = ajv.compile(rewrite(schema) as Schema);
      cache.set(schema, v);
    }
    return v;
  };
  return { document, operations, deref, validator };
}

export function describeErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? e.keyword}`).join("; ");
}

/**
 * Operations of the spec Baton does not serve yet (it answers 404 "No route"
 * for them; checked below, so serving one makes this list fail until the
 * operation is fuzzed).
 */
export const NOT_SERVED: Record<string, string> = {
  "GET /threads/{thread_id}/storage": "thread storage is future work",
  "GET /docs": "the API docs page is future work",
};
