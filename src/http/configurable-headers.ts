/**
 * Request headers a run sees in `config.configurable`, as the official
 * server copies them: by default every `x-*` header but the credentials
 * ones, and `user-agent`; `http.configurable_headers` narrows or widens that
 * with `includes`/`excludes` patterns (excludes win).
 */
import type { HeaderRule } from "./project-options.ts";

/** Never copied unless `includes` names them literally: they carry credentials. */
const CREDENTIALS = new Set(["x-api-key", "x-tenant-id", "x-service-key"]);

function wanted(name: string, rule: HeaderRule): boolean {
  if (rule.excludes.some((pattern) => pattern.test(name))) return false;
  if (CREDENTIALS.has(name) && !rule.named.has(name)) return false;
  if (rule.includes !== undefined) return rule.includes.some((pattern) => pattern.test(name));
  return name.startsWith("x-") || name === "user-agent";
}

export function configurableHeaders(headers: Headers, rule: HeaderRule): Record<string, string> {
  const copied: Record<string, string> = {};
  // Header names come lower-cased.
  headers.forEach((value, name) => {
    if (wanted(name, rule)) copied[name] = value;
  });
  return copied;
}
