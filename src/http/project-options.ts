/**
 * The `http` section of langgraph.json, validated once at start. Every key of
 * the official schema (the LangGraph CLI's HttpConfig) is either implemented
 * here or accepted with its documented meaning; any other key is refused with
 * a message naming it, so a typo never goes unnoticed.
 */
import { z } from "zod";
import { ConfigError } from "../config.ts";

const strings = z.array(z.string());
const headerRule = z
  .object({
    includes: strings.nullish(),
    excludes: strings.nullish(),
    // The docs page on configurable headers spells them without the "s";
    // the schema with it. Both are read, as the official server does.
    include: strings.nullish(),
    exclude: strings.nullish(),
  })
  .strict();

const HttpSchema = z
  .object({
    app: z.string().min(1).optional(),
    disable_assistants: z.boolean().optional(),
    disable_threads: z.boolean().optional(),
    disable_runs: z.boolean().optional(),
    disable_store: z.boolean().optional(),
    disable_meta: z.boolean().optional(),
    disable_ui: z.boolean().optional(),
    disable_webhooks: z.boolean().optional(),
    disable_mcp: z.boolean().optional(),
    disable_a2a: z.boolean().optional(),
    cors: z
      .object({
        allow_origins: strings.optional(),
        allow_origin_regex: z.string().optional(),
        allow_methods: strings.optional(),
        allow_headers: strings.optional(),
        allow_credentials: z.boolean().optional(),
        expose_headers: strings.optional(),
        max_age: z.number().int().min(0).optional(),
      })
      .strict()
      .nullish(),
    configurable_headers: headerRule.nullish(),
    // Baton logs no request headers, so there is nothing to exclude.
    logging_headers: headerRule.nullish(),
    // Whether the project's own routes are authenticated (docs/auth.md, "Custom routes").
    middleware_order: z.enum(["auth_first", "middleware_first"]).nullish(),
    enable_custom_route_auth: z.boolean().optional(),
    mount_prefix: z
      .string()
      .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/, "must be a URL path starting with '/', such as \"/api\"")
      .optional(),
  })
  .strict();

export interface CorsOptions {
  /** `*` allows every origin. */
  allowOrigins: string[];
  allowOriginRegex: RegExp | undefined;
  /** Undefined: the framework default list; `*` reflects what a preflight asks for. */
  allowMethods: string[] | undefined;
  /** Undefined or `*`: whatever the preflight asks for. */
  allowHeaders: string[] | undefined;
  allowCredentials: boolean;
  exposeHeaders: string[];
  maxAgeSeconds: number | undefined;
}

/** Which request headers a run sees in `config.configurable`. */
export interface HeaderRule {
  includes: RegExp[] | undefined;
  excludes: RegExp[];
  /** Header names listed literally in `includes` (they pass the default exclusions). */
  named: Set<string>;
}

export interface HttpOptions {
  /** `./file.ts:export` of the project's Hono app. */
  app: string | undefined;
  disabled: { assistants: boolean; threads: boolean; runs: boolean; store: boolean; meta: boolean; ui: boolean; webhooks: boolean; mcp: boolean; a2a: boolean };
  cors: CorsOptions;
  configurableHeaders: HeaderRule;
  /** "" or a path such as "/api": every route, the project's included, is served under it. */
  mountPrefix: string;
  /**
   * With `auth`: whether the project's own routes (and middleware) are
   * behind authentication. `enable_custom_route_auth`, else false when
   * `middleware_order` is `middleware_first`, else true (the published dev
   * server authenticates every route).
   */
  customRouteAuth: boolean;
}

/**
 * Headers a browser page may read on any response: what the SDK reads
 * (run ids, the stream to reconnect to, pagination) and the retry hint of
 * 409 and 429 answers. Always exposed, whatever `http.cors` says.
 */
export const SDK_EXPOSED_HEADERS = ["Content-Location", "Location", "X-Pagination-Total", "X-Pagination-Next", "Retry-After"];

/** `*` matches any run of characters; nothing else is special. */
function wildcard(pattern: string): RegExp {
  const escaped = pattern
    .toLowerCase()
    .split("*")
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${escaped}$`);
}

function corsOptions(raw: z.infer<typeof HttpSchema>["cors"]): CorsOptions {
  // Without `http.cors` the official server lets every origin in.
  if (raw === undefined || raw === null) {
    return { allowOrigins: ["*"], allowOriginRegex: undefined, allowMethods: undefined, allowHeaders: undefined, allowCredentials: false, exposeHeaders: SDK_EXPOSED_HEADERS, maxAgeSeconds: undefined };
  }
  let allowOriginRegex: RegExp | undefined;
  if (raw.allow_origin_regex !== undefined) {
    try {
      // Matched against the whole origin, as the official (Python) server does.
      allowOriginRegex = new RegExp(`^(?:${raw.allow_origin_regex})$`);
    } catch (error) {
      throw new ConfigError(`langgraph.json http.cors.allow_origin_regex is not a valid regular expression: ${(error as Error).message}`);
    }
  }
  const expose = [...SDK_EXPOSED_HEADERS];
  for (const header of raw.expose_headers ?? []) {
    if (!expose.some((h) => h.toLowerCase() === header.toLowerCase())) expose.push(header);
  }
  return {
    // Neither origins nor a regex: every origin, as on the dev server.
    allowOrigins: raw.allow_origins ?? (allowOriginRegex === undefined ? ["*"] : []),
    allowOriginRegex,
    allowMethods: raw.allow_methods,
    allowHeaders: raw.allow_headers,
    allowCredentials: raw.allow_credentials ?? false,
    exposeHeaders: expose,
    maxAgeSeconds: raw.max_age,
  };
}

function headerRuleOf(raw: z.infer<typeof headerRule> | null | undefined): HeaderRule {
  const includes = raw?.includes ?? raw?.include ?? undefined;
  const excludes = raw?.excludes ?? raw?.exclude ?? [];
  return {
    includes: includes?.map(wildcard),
    excludes: excludes.map(wildcard),
    named: new Set((includes ?? []).filter((name) => !name.includes("*")).map((name) => name.toLowerCase())),
  };
}

/**
 * Validates `project.http` and returns the options the HTTP edge uses.
 * Throws a ConfigError naming the offending key.
 */
export function httpOptions(raw: unknown): HttpOptions {
  const result = HttpSchema.safeParse(raw ?? {});
  if (!result.success) {
    const known = Object.keys(HttpSchema.shape).join(", ");
    const problems = result.error.issues.map((issue) => {
      const path = ["http", ...issue.path.map(String)].join(".");
      if (issue.code === "unrecognized_keys") {
        const keys = issue.keys.map((key) => `${path}.${key}`).join(", ");
        return `${keys}: not a key of the official langgraph.json schema${issue.path.length === 0 ? ` (known: ${known})` : ""}`;
      }
      return `${path}: ${issue.message}`;
    });
    throw new ConfigError(`langgraph.json ${problems.join("; ")}`);
  }
  const http = result.data;
  const prefix = (http.mount_prefix ?? "").replace(/\/+$/, "");
  if (http.enable_custom_route_auth === true && http.middleware_order === "middleware_first") {
    throw new ConfigError(
      "langgraph.json http.enable_custom_route_auth is true but http.middleware_order is middleware_first: the project's middleware would run before authentication on the routes it protects. Use middleware_order auth_first, or drop one of them.",
    );
  }
  return {
    app: http.app,
    disabled: {
      assistants: http.disable_assistants ?? false,
      threads: http.disable_threads ?? false,
      runs: http.disable_runs ?? false,
      store: http.disable_store ?? false,
      meta: http.disable_meta ?? false,
      ui: http.disable_ui ?? false,
      webhooks: http.disable_webhooks ?? false,
      mcp: http.disable_mcp ?? false,
      a2a: http.disable_a2a ?? false,
    },
    cors: corsOptions(http.cors),
    configurableHeaders: headerRuleOf(http.configurable_headers),
    mountPrefix: prefix,
    customRouteAuth: http.enable_custom_route_auth ?? http.middleware_order !== "middleware_first",
  };
}
