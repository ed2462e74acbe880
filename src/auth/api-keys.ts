/**
 * The built-in API-key mode, for teams without an auth handler of their
 * own: `BATON_API_KEYS` holds the accepted keys, each `identity:key` (or a
 * bare key, whose identity is `default`). A request presents one in
 * `x-api-key` (what the official SDK sends for `new Client({ apiKey })`)
 * or `Authorization: Bearer <key>`. Keys are compared in constant time: both
 * sides are hashed with SHA-256 and compared with `timingSafeEqual`, and
 * every key is tried, so neither a key's length nor its position shows in
 * the answer's timing.
 *
 * The identity is the caller for per-user limits and for a run's
 * `langgraph_auth_user`; every key sees the same data (there are no
 * authorization handlers in this mode).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { AuthFailure, type Authenticator } from "../core/authorizer.ts";
import type { Principal } from "../core/context.ts";

interface Key {
  identity: string;
  digest: Buffer;
}

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest();

/** Parses `BATON_API_KEYS`; a start-up error names what is wrong (never the key itself). */
export function parseApiKeys(spec: string): { identity: string; key: string }[] {
  const entries = spec
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (entries.length === 0) throw new Error("BATON_API_KEYS is set but holds no key; give at least one (identity:key, comma-separated).");
  return entries.map((entry, index) => {
    const colon = entry.indexOf(":");
    const identity = colon < 0 ? "default" : entry.slice(0, colon).trim();
    const key = colon < 0 ? entry : entry.slice(colon + 1).trim();
    if (identity === "") throw new Error(`BATON_API_KEYS entry ${index + 1} has an empty identity before ':'.`);
    if (key.length < 16) throw new Error(`BATON_API_KEYS entry ${index + 1} (identity '${identity}') has a key of ${key.length} characters; use at least 16 (e.g. openssl rand -hex 32).`);
    return { identity, key };
  });
}

export class ApiKeyAuthenticator implements Authenticator {
  readonly #keys: Key[];

  constructor(keys: { identity: string; key: string }[]) {
    this.#keys = keys.map(({ identity, key }) => ({ identity, digest: digest(key) }));
  }

  authenticate(request: Request): Promise<Principal> {
    const presented = presentedKey(request.headers);
    if (presented === undefined) {
      return Promise.reject(
        new AuthFailure(401, "Missing API key: send it in the x-api-key header (new Client({ apiKey })) or as Authorization: Bearer <key>.", {
          "WWW-Authenticate": 'Bearer realm="baton"',
        }),
      );
    }
    const candidate = digest(presented);
    let found: string | undefined;
    for (const key of this.#keys) {
      // Every key is compared, whatever matched before.
      if (timingSafeEqual(candidate, key.digest) && found === undefined) found = key.identity;
    }
    if (found === undefined) {
      return Promise.reject(new AuthFailure(401, "Invalid API key.", { "WWW-Authenticate": 'Bearer realm="baton", error="invalid_token"' }));
    }
    return Promise.resolve({ identity: found, display_name: found, is_authenticated: true, permissions: [] });
  }
}

function presentedKey(headers: Headers): string | undefined {
  const header = headers.get("x-api-key");
  if (header !== null && header !== "") return header;
  const authorization = headers.get("authorization");
  const match = authorization === null ? null : /^Bearer\s+(.+)$/i.exec(authorization.trim());
  return match?.[1];
}
