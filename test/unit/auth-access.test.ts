/**
 * How a server authenticates, decided at start (src/auth): the API-key
 * mode's parsing and checks, the refusal to serve unauthenticated beyond
 * loopback, and how an `Auth` object's answers are normalised.
 */
import { describe, expect, it } from "vitest";
import { Auth } from "@langchain/langgraph-sdk/auth";
import { ApiKeyAuthenticator, parseApiKeys } from "../../src/auth/api-keys.ts";
import { isLoopback, loadAccess } from "../../src/auth/index.ts";
import { handlersOf, principalOf } from "../../src/auth/project-auth.ts";
import { ConfigError } from "../../src/config.ts";
import { createLogger } from "../../src/server.ts";

const logger = createLogger({ level: "error", format: "json", write: () => undefined });
const KEY_A = "a".repeat(16) + "-alice";
const KEY_B = "b".repeat(32);
const request = (headers: Record<string, string>) => new Request("http://localhost/threads", { headers });

describe("API keys", () => {
  it("parses identity:key entries and bare keys, refusing short keys and empty identities without showing the key", () => {
    expect(parseApiKeys(` alice:${KEY_A}, ${KEY_B} `)).toEqual([
      { identity: "alice", key: KEY_A },
      { identity: "default", key: KEY_B },
    ]);
    expect(() => parseApiKeys("alice:short")).toThrow(/entry 1 \(identity 'alice'\) has a key of 5 characters/);
    expect(() => parseApiKeys("alice:short")).not.toThrow(/short/);
    expect(() => parseApiKeys(`:${KEY_A}`)).toThrow(/empty identity/);
    expect(() => parseApiKeys(" , ")).toThrow(/holds no key/);
  });

  it("accepts a key in x-api-key or as a bearer token, and refuses a missing or wrong one with 401", async () => {
    const keys = new ApiKeyAuthenticator(parseApiKeys(`alice:${KEY_A},bob:${KEY_B}`));
    expect(await keys.authenticate(request({ "x-api-key": KEY_A }))).toEqual({ identity: "alice", display_name: "alice", is_authenticated: true, permissions: [] });
    expect((await keys.authenticate(request({ authorization: `Bearer ${KEY_B}` }))).identity).toBe("bob");
    await expect(keys.authenticate(request({}))).rejects.toMatchObject({ status: 401, message: expect.stringMatching(/Missing API key/), headers: { "WWW-Authenticate": 'Bearer realm="baton"' } });
    await expect(keys.authenticate(request({ "x-api-key": `${KEY_A}x` }))).rejects.toMatchObject({ status: 401, message: "Invalid API key." });
    await expect(keys.authenticate(request({ authorization: `Basic ${KEY_A}` }))).rejects.toMatchObject({ status: 401 });
  });
});

describe("start-up", () => {
  const base = { apiKeys: undefined, allowUnauthenticated: false, host: "127.0.0.1", role: "all" as const };
  it("serves unauthenticated on loopback only, unless told a proxy authenticates", async () => {
    expect((await loadAccess(base, { graphs: {} }, ".", logger)).mode).toBe("none");
    await expect(loadAccess({ ...base, host: "0.0.0.0" }, { graphs: {} }, ".", logger)).rejects.toThrow(ConfigError);
    await expect(loadAccess({ ...base, host: "0.0.0.0" }, { graphs: {} }, ".", logger)).rejects.toThrow(/would listen on 0\.0\.0\.0 with no authentication.*BATON_ALLOW_UNAUTHENTICATED=true/);
    expect((await loadAccess({ ...base, host: "0.0.0.0", allowUnauthenticated: true }, { graphs: {} }, ".", logger)).mode).toBe("none");
    expect((await loadAccess({ ...base, host: "0.0.0.0", apiKeys: KEY_B }, { graphs: {} }, ".", logger)).mode).toBe("api-keys");
    // A worker serves no API.
    expect((await loadAccess({ ...base, host: "0.0.0.0", role: "worker" }, { graphs: {} }, ".", logger)).mode).toBe("none");
    for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"]) expect(isLoopback(host), host).toBe(true);
    for (const host of ["0.0.0.0", "::", "10.0.0.1", "example.com", "127.0.0.1.example.com"]) expect(isLoopback(host), host).toBe(false);
  });

  it("refuses auth.path and BATON_API_KEYS together, and an auth.path that is not an Auth instance with authenticate", async () => {
    await expect(loadAccess({ ...base, apiKeys: KEY_B }, { graphs: {}, auth: { path: "./auth.ts:auth" } }, ".", logger)).rejects.toThrow(/Both langgraph.json auth.path and BATON_API_KEYS/);
    expect(() => handlersOf({}, "./a.ts:auth")).toThrow(/must export an instance of Auth/);
    expect(() => handlersOf(undefined, "./a.ts:nope")).toThrow(/exports nothing/);
    expect(() => handlersOf(new Auth(), "./a.ts:auth")).toThrow(/has no authenticate handler/);
    expect(handlersOf(new Auth().authenticate(() => "x"), "./a.ts:auth").authenticate).toBeTypeOf("function");
  });
});

describe("what authenticate answers", () => {
  it("is normalised as the official server does", () => {
    expect(principalOf("alice")).toEqual({ identity: "alice", display_name: "alice", is_authenticated: true, permissions: [] });
    expect(principalOf({ identity: "bob", permissions: ["read", 3], org: "x" })).toEqual({ identity: "bob", display_name: "bob", is_authenticated: true, permissions: ["read"], org: "x" });
    expect(principalOf({ identity: "c", display_name: "Carol", is_authenticated: false })).toMatchObject({ display_name: "Carol", is_authenticated: false });
    expect(() => principalOf({ id: "no identity" })).toThrow(/string 'identity'/);
    expect(() => principalOf("")).toThrow(/string 'identity'/);
  });
});
