/**
 * Authentication and authorization (issue 12, item 1) with a project's own
 * `Auth` object written against the official class
 * (test/fixtures/auth/auth.ts): every route tried with another user's
 * credentials and ids, the statuses the official server answers (401 from
 * authenticate, 403 from a handler, 404 for another user's records), what a
 * graph sees of its caller, and custom routes.
 */
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.ts";

const PROJECT = join(import.meta.dirname, "../fixtures/auth/langgraph.json");
const OPEN_ROUTES = join(import.meta.dirname, "../fixtures/auth/langgraph.open-routes.json");

let t: TestServer;
beforeAll(async () => {
  t = await startServer({ configPath: PROJECT });
});
afterAll(async () => {
  await t?.close();
});

const as = (token: string) => new Client({ apiUrl: t.url, defaultHeaders: { authorization: `Bearer ${token}` } });

async function raw(token: string | null, method: string, path: string, body?: unknown, url = t.url): Promise<{ status: number; body: unknown; headers: Headers }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text === "" ? null : JSON.parse(text);
  } catch {
    // An event stream: kept as text.
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

const input = { messages: [{ role: "user", content: "hi" }] };
/** What the whoami graph said about its run. */
const said = (output: unknown) => {
  const messages = (output as { messages: { content: string }[] }).messages;
  return JSON.parse(messages.at(-1)!.content) as Record<string, unknown>;
};

describe("authentication", () => {
  it("refuses a request without credentials with the handler's own status, header and message", async () => {
    const answer = await raw(null, "POST", "/threads/search", {});
    expect(answer.status).toBe(401);
    expect(answer.body).toEqual({ detail: "Missing bearer token." });
    expect(answer.headers.get("www-authenticate")).toBe('Bearer realm="fixture"');
  });

  it("answers an unknown token 401, and an authenticate handler that fails (or an HTTP client's error in it) 401 without its error", async () => {
    expect(await raw("token-nobody", "POST", "/threads/search", {})).toMatchObject({ status: 401, body: { detail: "Unknown token." } });
    expect(await raw("token-explode", "POST", "/threads/search", {})).toMatchObject({ status: 401, body: { detail: "Authentication failed." } });
    // Only an HTTPException is the handler's answer: another error with a status is not shown, status, headers or message.
    const upstream = await raw("token-upstream", "POST", "/threads/search", {});
    expect(upstream).toMatchObject({ status: 401, body: { detail: "Authentication failed." } });
    expect(upstream.headers.get("x-upstream")).toBeNull();
  });

  it("leaves /ok and /info open, as the official server does", async () => {
    expect((await raw(null, "GET", "/ok")).status).toBe(200);
    expect((await raw(null, "GET", "/info")).status).toBe(200);
  });

  it("protects the project's own routes unless http.enable_custom_route_auth is false", async () => {
    expect((await raw(null, "GET", "/custom/open-or-not")).status).toBe(401);
    expect(await raw("token-alice", "GET", "/custom/open-or-not")).toMatchObject({ status: 200, body: { reached: true } });
    const open = await startServer({ configPath: OPEN_ROUTES });
    try {
      expect(await raw(null, "GET", "/custom/open-or-not", undefined, open.url)).toMatchObject({ status: 200, body: { reached: true } });
      // The API itself stays behind authentication.
      expect((await raw(null, "POST", "/threads/search", {}, open.url)).status).toBe(401);
    } finally {
      await open.close();
    }
  });
});

describe("authorization handlers", () => {
  it("a handler's false is 403, and so is a handler that throws (its error is not shown)", async () => {
    const reader = as("token-reader");
    const thread = await reader.threads.create();
    expect(await raw("token-reader", "DELETE", `/threads/${thread.thread_id}`)).toMatchObject({ status: 403, body: { detail: "Not authorized to delete threads." } });
    expect((await reader.threads.get(thread.thread_id)).thread_id).toBe(thread.thread_id);
    for (const [method, path, body] of [
      ["POST", "/threads", {}],
      ["POST", "/threads/search", {}],
      ["POST", "/assistants/search", {}],
      ["POST", "/runs/wait", { assistant_id: "whoami", input }],
      ["PUT", "/store/items", { namespace: ["mallory"], key: "k", value: { v: 1 } }],
    ] as const) {
      expect(await raw("token-mallory", method, path, body), `${method} ${path}`).toMatchObject({ status: 403 });
    }
  });

  it("a handler's rewrite is stored: records carry their creator as metadata.owner", async () => {
    const alice = as("token-alice");
    const thread = await alice.threads.create({ metadata: { owner: "bob", topic: "t" } });
    expect(thread.metadata).toEqual({ owner: "alice", topic: "t" });
    const assistant = await alice.assistants.create({ graphId: "whoami", metadata: { owner: "bob" } });
    expect(assistant.metadata).toEqual({ owner: "alice" });
    const run = await alice.runs.create(thread.thread_id, "whoami", { input, metadata: { owner: "bob" } });
    expect(run.metadata).toMatchObject({ owner: "alice" });
  });
});

describe("a graph sees its caller", () => {
  it("as langgraph_auth_user, _user_id and _permissions, which the request cannot forge", async () => {
    const alice = as("token-alice");
    const thread = await alice.threads.create();
    const output = await alice.runs.wait(thread.thread_id, "whoami", {
      input,
      config: { configurable: { langgraph_auth_user_id: "bob", langgraph_auth_user: { identity: "bob" }, langgraph_auth_permissions: ["all"] } },
    });
    expect(said(output)).toEqual({ user_id: "alice", identity: "alice", team: "red", permissions: ["threads:delete"], thread_id: thread.thread_id });
    // A stateless run too.
    expect(said(await as("token-bob").runs.wait(null, "whoami", { input }))).toMatchObject({ user_id: "bob", team: "blue" });
  });
});

describe("another user's data is not there", () => {
  let alice: Client;
  let bob: Client;
  let threadId: string;
  let runId: string;
  let assistantId: string;
  let stateless: { thread_id: string; run_id: string };
  let threadMetadata: unknown;

  beforeAll(async () => {
    alice = as("token-alice");
    bob = as("token-bob");
    const thread = await alice.threads.create({ metadata: { tag: "alice-only" } });
    threadId = thread.thread_id;
    await alice.runs.wait(threadId, "whoami", { input });
    runId = (await alice.runs.list(threadId))[0]!.run_id;
    threadMetadata = (await alice.threads.get(threadId)).metadata;
    assistantId = (await alice.assistants.create({ graphId: "whoami", name: "alice's" })).assistant_id;
    // The SDK types on_completion loosely ("complete" | "continue"); the API takes "delete" | "keep".
    const run = await alice.runs.create(null, "whoami", { input, onCompletion: "keep" as never });
    await alice.runs.join(run.thread_id, run.run_id);
    stateless = { thread_id: run.thread_id, run_id: run.run_id };
    await alice.store.putItem(["alice", "notes"], "k", { secret: "alice's" });
  });

  it("answers 404 on every route that names one of alice's records by id", async () => {
    const thread = { detail: `Thread '${threadId}' not found.` };
    const run = { detail: `Run '${runId}' not found.` };
    const assistant = { detail: expect.stringContaining(assistantId) };
    const cases: [string, string, unknown, unknown][] = [
      ["GET", `/assistants/${assistantId}`, undefined, assistant],
      ["PATCH", `/assistants/${assistantId}`, { metadata: { stolen: true } }, assistant],
      ["DELETE", `/assistants/${assistantId}`, undefined, assistant],
      ["POST", `/assistants/${assistantId}/versions`, {}, assistant],
      ["POST", `/assistants/${assistantId}/latest`, { version: 1 }, assistant],
      ["GET", `/assistants/${assistantId}/graph`, undefined, assistant],
      ["GET", `/assistants/${assistantId}/schemas`, undefined, assistant],
      ["GET", `/assistants/${assistantId}/subgraphs`, undefined, assistant],
      ["GET", `/threads/${threadId}`, undefined, thread],
      ["PATCH", `/threads/${threadId}`, { metadata: { stolen: true } }, thread],
      ["DELETE", `/threads/${threadId}`, undefined, thread],
      ["POST", `/threads/${threadId}/copy`, {}, thread],
      ["GET", `/threads/${threadId}/state`, undefined, thread],
      ["POST", `/threads/${threadId}/state`, { values: { messages: [] } }, thread],
      ["POST", `/threads/${threadId}/state/checkpoint`, { checkpoint: {} }, thread],
      ["GET", `/threads/${threadId}/history`, undefined, thread],
      ["POST", `/threads/${threadId}/history`, {}, thread],
      ["POST", `/threads/${threadId}/runs`, { assistant_id: "whoami", input }, thread],
      ["POST", `/threads/${threadId}/runs/wait`, { assistant_id: "whoami", input }, thread],
      ["POST", `/threads/${threadId}/runs/stream`, { assistant_id: "whoami", input }, thread],
      ["POST", `/threads/${threadId}/runs`, { assistant_id: "whoami", input, if_not_exists: "create" }, thread],
      ["GET", `/threads/${threadId}/runs`, undefined, thread],
      ["GET", `/threads/${threadId}/runs/${runId}`, undefined, run],
      ["GET", `/threads/${threadId}/runs/${runId}/join`, undefined, run],
      ["GET", `/threads/${threadId}/runs/${runId}/stream`, undefined, run],
      ["GET", `/runs/${runId}/stream`, undefined, run],
      ["POST", `/threads/${threadId}/runs/${runId}/cancel`, undefined, run],
      ["DELETE", `/threads/${threadId}/runs/${runId}`, undefined, run],
      ["POST", "/runs/cancel", { thread_id: threadId }, thread],
      ["GET", `/threads/${stateless.thread_id}/runs/${stateless.run_id}`, undefined, { detail: `Run '${stateless.run_id}' not found.` }],
      ["GET", `/runs/${stateless.run_id}/stream`, undefined, { detail: `Run '${stateless.run_id}' not found.` }],
    ];
    for (const [method, path, body, detail] of cases) {
      const answer = await raw("token-bob", method, path, body);
      expect({ method, path, status: answer.status, body: answer.body }).toEqual({ method, path, status: 404, body: detail });
    }
  });

  it("leaves alice's records out of bob's searches, counts, listings and bulk actions", async () => {
    expect((await bob.threads.search({ limit: 100 })).map((x) => x.thread_id)).not.toContain(threadId);
    expect(await bob.threads.search({ ids: [threadId, stateless.thread_id], limit: 100 })).toEqual([]);
    expect(await bob.threads.search({ metadata: { tag: "alice-only" }, limit: 100 })).toEqual([]);
    expect(await bob.threads.count({ metadata: { owner: "alice" } })).toBe(0);
    expect((await bob.assistants.search({ limit: 100 })).map((x) => x.assistant_id)).not.toContain(assistantId);
    expect(await bob.assistants.count({ metadata: { owner: "alice" } })).toBe(0);
    expect((await bob.store.searchItems([], { limit: 100 })).items).toEqual([]);
    expect(await bob.store.listNamespaces({ limit: 100 })).toEqual({ namespaces: [] });
    expect(await raw("token-bob", "POST", "/threads/prune", { thread_ids: [threadId], strategy: "delete" })).toMatchObject({ status: 200, body: { pruned_count: 0 } });
    expect((await raw("token-bob", "POST", "/runs/cancel", { run_ids: [runId] })).status).toBe(204);
    // Taking over alice's ids is refused, not answered with her records.
    expect((await raw("token-bob", "POST", "/threads", { thread_id: threadId, if_exists: "do_nothing" })).status).toBe(409);
    expect((await raw("token-bob", "POST", "/assistants", { assistant_id: assistantId, graph_id: "whoami", if_exists: "do_nothing" })).status).toBe(409);
  });

  it("refuses bob alice's store namespace (the handler's 403), and finds nothing of hers under his own", async () => {
    expect(await raw("token-bob", "GET", "/store/items?namespace=alice.notes&key=k")).toMatchObject({ status: 403 });
    expect((await raw("token-bob", "PUT", "/store/items", { namespace: ["alice", "notes"], key: "k", value: { stolen: true } })).status).toBe(403);
    expect((await raw("token-bob", "DELETE", "/store/items", { namespace: ["alice", "notes"], key: "k" })).status).toBe(403);
    expect((await raw("token-bob", "POST", "/store/items/search", { namespace_prefix: ["alice"] })).status).toBe(403);
    expect(await bob.store.getItem(["bob", "notes"], "k")).toBeNull();
  });

  it("a run cannot reach another thread through its config", async () => {
    const mine = await bob.threads.create();
    const output = await bob.runs.wait(mine.thread_id, "whoami", { input, config: { configurable: { thread_id: threadId } } });
    expect(said(output)).toMatchObject({ user_id: "bob", thread_id: mine.thread_id });
    // alice's thread has still only her own run and checkpoints.
    expect((await alice.runs.list(threadId)).map((r) => r.run_id)).toEqual([runId]);
    const history = await alice.threads.getHistory(threadId);
    expect(history.every((state) => state.metadata?.run_id === runId || state.metadata?.run_id === undefined)).toBe(true);
  });

  it("after all of it, alice's records are unchanged", async () => {
    expect(threadMetadata).toMatchObject({ tag: "alice-only", owner: "alice", graph_id: "whoami" });
    expect((await alice.threads.get(threadId)).metadata).toEqual(threadMetadata);
    expect((await alice.runs.get(threadId, runId)).status).toBe("success");
    expect((await alice.assistants.get(assistantId)).name).toBe("alice's");
    expect((await alice.store.getItem(["alice", "notes"], "k"))?.value).toEqual({ secret: "alice's" });
    expect((await alice.runs.get(stateless.thread_id, stateless.run_id)).status).toBe("success");
  });
});
