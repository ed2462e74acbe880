/**
 * How a server authenticates and authorizes, decided once at start from
 * langgraph.json's `auth` and `BATON_API_KEYS` (docs/auth.md):
 *
 * - `auth.path`: the project's `Auth` instance authenticates every request
 *   and its `on(...)` handlers authorize every action;
 * - `BATON_API_KEYS`: a key authenticates; every key may do everything;
 * - neither: anonymous, allowed only on a loopback address unless
 *   `BATON_ALLOW_UNAUTHENTICATED` says a proxy in front authenticates.
 */
import { ConfigError, type Config, type Project } from "../config.ts";
import type { Authenticator, Authorizer } from "../core/authorizer.ts";
import { importExport } from "../core/graphs.ts";
import type { Logger } from "../core/logger.ts";
import { ApiKeyAuthenticator, parseApiKeys } from "./api-keys.ts";
import { handlersOf, ProjectAuth } from "./project-auth.ts";

export interface Access {
  mode: "custom" | "api-keys" | "none";
  authenticator?: Authenticator | undefined;
  authorizer?: Authorizer | undefined;
}

export async function loadAccess(config: Pick<Config, "apiKeys" | "allowUnauthenticated" | "host" | "role">, project: Project, baseDir: string, logger: Logger): Promise<Access> {
  const path = project.auth?.path;
  if (path !== undefined && config.apiKeys !== undefined) {
    throw new ConfigError("Both langgraph.json auth.path and BATON_API_KEYS are set; choose one (check the API key in your authenticate handler if you need both).");
  }
  if (path !== undefined) {
    let exported: unknown;
    try {
      exported = await importExport(baseDir, path);
    } catch (error) {
      throw new ConfigError(`langgraph.json auth.path '${path}' could not be loaded: ${(error as Error).message}`);
    }
    const auth = new ProjectAuth(handlersOf(exported, path), logger);
    logger.info("auth:custom", { path, studio_bypass: false });
    return { mode: "custom", authenticator: auth, authorizer: auth };
  }
  if (config.apiKeys !== undefined) {
    let keys: ReturnType<typeof parseApiKeys>;
    try {
      keys = parseApiKeys(config.apiKeys);
    } catch (error) {
      throw new ConfigError((error as Error).message);
    }
    logger.info("auth:api-keys", { identities: [...new Set(keys.map((k) => k.identity))] });
    return { mode: "api-keys", authenticator: new ApiKeyAuthenticator(keys) };
  }
  if (config.role !== "worker" && !isLoopback(config.host) && !config.allowUnauthenticated) {
    throw new ConfigError(
      `Baton would listen on ${config.host} with no authentication: anyone who reaches the port could read and write every thread. ` +
        "Set auth.path in langgraph.json or BATON_API_KEYS; or, if a proxy in front authenticates every request, set BATON_ALLOW_UNAUTHENTICATED=true.",
    );
  }
  if (config.role !== "worker" && !isLoopback(config.host)) logger.warn("auth:none", { host: config.host, reason: "BATON_ALLOW_UNAUTHENTICATED is set" });
  return { mode: "none" };
}

/** A loopback address or name: only this host can connect. */
export function isLoopback(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, "");
  return name === "localhost" || name === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}
