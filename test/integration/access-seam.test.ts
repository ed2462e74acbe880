/**
 * The access seam (issue 16): every store, assistant, thread and run action asks the
 * Authorizer, with the request's context, before it acts; a filter it
 * returns hides other callers' records; a denial is 403. The authorizer is
 * injected through createServer, as a project's auth will be.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig, loadProject } from "../../src/config.ts";
import { AccessDenied, type Authorization, type Authorizer, type Resource, type ResourceActions } from "../../src/core/authorizer.ts";
import type { RequestContext } from "../../src/core/context.ts";
import type { Filter } from "../../src/core/filter.ts";
import { createLogger, createServer, type BatonServer } from "../../src/server.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { EXECUTION_THREADS, FIXTURES, REDIS_URL, SCALE_OUT } from "../helpers/server.ts";

interface Call {
  event: string;
  ctx: RequestContext;
  value: Record<string, unknown>;
}

type Decide = (ctx: RequestContext, event: string, value: Record<string, unknown>) => { value?: Record<string, unknown>; filter?: Filter } | undefined;

/** Records every call; answers what the current test's `decide` says (allow everything by default). */
class RecordingAuthorizer implements Authorizer {
  calls: Call[] = [];
  decide: Decide = () => undefined;
  async authorize<R extends Resource, V extends object>(ctx: RequestContext, resource: R, action: ResourceActions[R], value: V): Promise<Authorization<V>> {
    const event = `${resource}:${action}`;
    this.calls.push({ event, ctx, value: structuredClone(value) as Record<string, unknown> });
    const decision = this.decide(ctx, event, value as Record<string, unknown>);
    return { value: (decision?.value ?? value) as V, filter: decision?.filter };
  }
}

const authorizer = new RecordingAuthorizer();
let server: BatonServer;
let database: TestDatabase | undefined;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "baton-seam-"));
  database = SCALE_OUT ? await freshDatabase("seam") : undefined;
  const backend = database === undefined ? { executionThreads: EXECUTION_THREADS } : { databaseUrl: database.url, redisUrl: REDIS_URL, redisPrefix: `baton-test:${randomUUID()}:` };
  const config = loadConfig({ port: 0, dataDir, configPath: FIXTURES, shutdownGraceMs: 0, ...backend }, {});
  const logger = createLogger({ level: "warn", format: "json", write: (line) => process.stderr.write(line) });
  server = await createServer(config, loadProject(config.configPath, {}), logger, undefined, { authorizer });
});

afterAll(async () => {
  await server?.close(0);
  await database?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

beforeEach(() => {
  authorizer.calls = [];
  authorizer.decide = () => undefined;
});

const clientAs = (owner: string, extra: Record<string, string> = {}) => new Client({ apiUrl: server.url, defaultHeaders: { "x-owner": owner, ...extra } });

/** Fetches with the owner header; the status and the body's detail. */
async function raw(owner: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { "x-owner": owner, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : JSON.parse(text) };
}

describe("the authorizer is asked before every action", () => {
  it("for each assistant action, with the official resource, action and value, and the request's context", async () => {
    const client = clientAs("a", { "x-tenant": "t1", "x-api-key": "secret", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "Idempotency-Key": "key-1" });
    const created = await client.assistants.create({ graphId: "echo", metadata: { team: "x" }, name: "mine" });
    const id = created.assistant_id;
    await client.assistants.get(id);
    await client.assistants.update(id, { metadata: { team: "y" } });
    await client.assistants.search({ metadata: { team: "y" }, limit: 5 });
    await client.assistants.count({ graphId: "echo" });
    await client.assistants.getVersions(id);
    await client.assistants.setLatest(id, 1);
    // Graph routes read the assistant through the service too (schemas and subgraphs the same way; slower, left out).
    await client.assistants.getGraph(id);
    await client.assistants.delete(id);

    expect(authorizer.calls.map((call) => call.event)).toEqual([
      "assistants:create",
      "assistants:read",
      "assistants:update",
      "assistants:search",
      "assistants:search",
      "assistants:read",
      "assistants:update",
      "assistants:read",
      "assistants:delete",
    ]);
    const [create, read, update, search, count, , setLatest, , remove] = authorizer.calls;
    expect(create!.value).toMatchObject({ assistant_id: id, graph_id: "echo", metadata: { team: "x" }, name: "mine", if_exists: "raise" });
    expect(read!.value).toEqual({ assistant_id: id });
    expect(update!.value).toMatchObject({ assistant_id: id, metadata: { team: "y" } });
    expect(search!.value).toMatchObject({ metadata: { team: "y" }, limit: 5, offset: 0 });
    expect(count!.value).toMatchObject({ graph_id: "echo", limit: 0, offset: 0 });
    expect(setLatest!.value).toEqual({ assistant_id: id, version: 1 });
    expect(remove!.value).toEqual({ assistant_id: id });
    for (const { ctx } of authorizer.calls) {
      expect(ctx.principal).toBeNull();
      expect(ctx.headers["x-tenant"]).toBe("t1");
      expect(ctx.headers["x-owner"]).toBe("a");
      // Credentials are not among the headers a run may see.
      expect(ctx.headers["x-api-key"]).toBeUndefined();
      expect(ctx.traceparent).toBe("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
      expect(ctx.idempotencyKey).toBe("key-1");
    }
  });

  it("for each store action, with the official values", async () => {
    const client = clientAs("a");
    await client.store.putItem(["seam", "a"], "k1", { owner: "a", n: 1 });
    await client.store.getItem(["seam", "a"], "k1");
    await client.store.searchItems(["seam"], { filter: { n: 1 }, limit: 3 });
    await client.store.listNamespaces({ prefix: ["seam"], maxDepth: 2 });
    await client.store.deleteItem(["seam", "a"], "k1");

    expect(authorizer.calls.map((call) => [call.event, call.value])).toEqual([
      ["store:put", { namespace: ["seam", "a"], key: "k1", value: { owner: "a", n: 1 } }],
      ["store:get", { namespace: ["seam", "a"], key: "k1" }],
      ["store:search", { namespace: ["seam"], filter: { n: 1 }, limit: 3, offset: 0, query: undefined }],
      ["store:list_namespaces", { namespace: ["seam"], suffix: undefined, max_depth: 2, limit: 100, offset: 0 }],
      ["store:delete", { namespace: ["seam", "a"], key: "k1" }],
    ]);
    for (const { ctx } of authorizer.calls) expect(ctx.headers["x-owner"]).toBe("a");
  });

  it("each request gets its own context", async () => {
    await clientAs("a").store.getItem(["seam"], "none");
    await clientAs("b").store.getItem(["seam"], "none");
    expect(authorizer.calls.map((call) => call.ctx.headers["x-owner"])).toEqual(["a", "b"]);
    expect(authorizer.calls[0]!.ctx).not.toBe(authorizer.calls[1]!.ctx);
    // Headers the request did not carry are absent, not empty.
    expect(authorizer.calls[0]!.ctx.traceparent).toBeUndefined();
    expect(authorizer.calls[0]!.ctx.idempotencyKey).toBeUndefined();
  });
});

/** Assistants belong to whoever created them: created with metadata.owner set to the caller, seen only by them. */
const ownedAssistants: Decide = (ctx, event, value) => {
  const owner = ctx.headers["x-owner"]!;
  if (event === "assistants:create") return { value: { ...value, metadata: { ...(value.metadata as object), owner } }, filter: { owner } };
  if (event.startsWith("assistants:")) return { filter: { owner } };
  return undefined;
};

describe("a filter the authorizer returns reaches the query", () => {
  it("hides another owner's assistants from get, search, count, versions, update and delete", async () => {
    authorizer.decide = ownedAssistants;
    const a = clientAs("a");
    const b = clientAs("b");
    const mine = await a.assistants.create({ graphId: "echo", metadata: { team: "x" } });
    // The handler's rewrite is what got stored.
    expect(mine.metadata).toEqual({ team: "x", owner: "a" });
    const theirs = await b.assistants.create({ graphId: "echo", metadata: { team: "x" } });

    expect((await a.assistants.search({ limit: 100 })).map((x) => x.assistant_id)).toEqual([mine.assistant_id]);
    expect((await b.assistants.search({ metadata: { team: "x" }, limit: 100 })).map((x) => x.assistant_id)).toEqual([theirs.assistant_id]);
    // Asking for someone else's records by metadata finds nothing.
    expect(await b.assistants.search({ metadata: { owner: "a" }, limit: 100 })).toEqual([]);
    expect(await b.assistants.count({ metadata: { owner: "a" } })).toBe(0);
    expect(await a.assistants.count({ graphId: "echo" })).toBe(1);
    expect((await a.assistants.get(mine.assistant_id)).assistant_id).toBe(mine.assistant_id);
    // A graph's system assistant has no owner: hidden from both.
    expect((await raw("a", "GET", "/assistants/echo")).status).toBe(404);

    for (const [method, path, body] of [
      ["GET", `/assistants/${mine.assistant_id}`, undefined],
      ["PATCH", `/assistants/${mine.assistant_id}`, { metadata: { stolen: true } }],
      ["POST", `/assistants/${mine.assistant_id}/versions`, {}],
      ["POST", `/assistants/${mine.assistant_id}/latest`, { version: 1 }],
      ["GET", `/assistants/${mine.assistant_id}/schemas`, undefined],
      ["DELETE", `/assistants/${mine.assistant_id}`, undefined],
    ] as const) {
      const answer = await raw("b", method, path, body);
      expect({ method, path, status: answer.status }).toEqual({ method, path, status: 404 });
    }
    // Taking over the id with if_exists=do_nothing is refused, not answered with a's assistant.
    expect((await raw("b", "POST", "/assistants", { assistant_id: mine.assistant_id, graph_id: "echo", if_exists: "do_nothing" })).status).toBe(409);
    // Nothing b tried changed a's assistant.
    const after = await a.assistants.get(mine.assistant_id);
    expect(after.metadata).toEqual({ team: "x", owner: "a" });
    expect(after.version).toBe(1);
  });

  it("an $in filter (beyond containment) is applied by the query, to searches and counts alike", async () => {
    const a = clientAs("a");
    const ids: Record<string, string> = {};
    for (const owner of ["p", "q", "r"]) ids[owner] = (await a.assistants.create({ graphId: "echo", metadata: { owner, tag: "in-test" } })).assistant_id;
    authorizer.decide = (_ctx, event) => (event.startsWith("assistants:") ? { filter: { owner: { $in: ["p", "r"] } } } : undefined);
    const found = await a.assistants.search({ metadata: { tag: "in-test" }, limit: 100 });
    expect(found.map((x) => x.metadata?.owner).sort()).toEqual(["p", "r"]);
    expect(await a.assistants.count({ metadata: { tag: "in-test" } })).toBe(2);
    expect((await raw("a", "GET", `/assistants/${ids.q}`)).status).toBe(404);
  });

  it("hides another owner's store items; an item outside the filter cannot be written", async () => {
    authorizer.decide = (ctx, event) => (event.startsWith("store:") ? { filter: { owner: ctx.headers["x-owner"]! } } : undefined);
    const a = clientAs("a");
    const b = clientAs("b");
    await a.store.putItem(["owned"], "ka", { owner: "a" });
    await b.store.putItem(["owned"], "kb", { owner: "b" });

    expect((await a.store.getItem(["owned"], "ka"))?.value).toEqual({ owner: "a" });
    expect((await raw("b", "GET", "/store/items?namespace=owned&key=ka")).status).toBe(404);
    expect((await b.store.searchItems(["owned"])).items.map((item) => item.key)).toEqual(["kb"]);
    // b writing over a's item: not found; b writing an item that would be a's: forbidden.
    expect((await raw("b", "PUT", "/store/items", { namespace: ["owned"], key: "ka", value: { owner: "b" } })).status).toBe(404);
    expect((await raw("b", "PUT", "/store/items", { namespace: ["owned"], key: "new", value: { owner: "a" } })).status).toBe(403);
    expect((await raw("b", "DELETE", "/store/items", { namespace: ["owned"], key: "ka" })).status).toBe(404);
    expect((await a.store.getItem(["owned"], "ka"))?.value).toEqual({ owner: "a" });
    expect(await a.store.getItem(["owned"], "new")).toBeNull();
  });

  it("lists only the store namespaces the filter allows ($contains on the namespace)", async () => {
    authorizer.decide = (_ctx, event) => (event === "store:list_namespaces" ? { filter: { namespace: { $contains: "visible" } } } : undefined);
    const a = clientAs("a");
    await a.store.putItem(["ns", "visible"], "k", { n: 1 });
    await a.store.putItem(["ns", "hidden"], "k", { n: 1 });
    expect((await a.store.listNamespaces({ prefix: ["ns"] })).namespaces).toEqual([["ns", "visible"]]);
  });
});

describe("a denial", () => {
  it("is 403 with a detail, for writes and reads alike (as the official server answers a handler's false), and nothing happens", async () => {
    const a = clientAs("a");
    const assistant = await a.assistants.create({ graphId: "echo" });
    await a.store.putItem(["denied"], "k", { n: 1 });
    authorizer.decide = (_ctx, event) => {
      if (event === "assistants:delete" || event === "store:get" || event === "store:delete") throw new AccessDenied(event.split(":")[0] as Resource, event.split(":")[1]!);
      return undefined;
    };
    const deleted = await raw("a", "DELETE", `/assistants/${assistant.assistant_id}`);
    expect(deleted.status).toBe(403);
    expect(deleted.body).toEqual({ detail: "Not authorized to delete assistants." });
    expect((await raw("a", "GET", "/store/items?namespace=denied&key=k")).status).toBe(403);
    expect((await raw("a", "DELETE", "/store/items", { namespace: ["denied"], key: "k" })).status).toBe(403);
    authorizer.decide = () => undefined;
    expect((await a.assistants.get(assistant.assistant_id)).assistant_id).toBe(assistant.assistant_id);
    expect((await a.store.getItem(["denied"], "k"))?.value).toEqual({ n: 1 });
  });
});

describe("thread records", () => {
  it("each thread record action asks the authorizer with the official resource, action and value", async () => {
    const a = clientAs("a");
    const thread = await a.threads.create({ metadata: { team: "x" }, ttl: { strategy: "delete", ttl: 60 } });
    const id = thread.thread_id;
    await a.threads.get(id);
    await a.threads.update(id, { metadata: { team: "y" } });
    await a.threads.search({ metadata: { team: "y" }, status: "idle", limit: 5 });
    await a.threads.count({ metadata: { team: "y" } });
    const copy = await a.threads.copy(id);
    await a.threads.delete(id);

    expect(authorizer.calls.map((call) => [call.event, call.value])).toEqual([
      // The client's TTL as the official ThreadsCreate value carries it.
      ["threads:create", { thread_id: id, metadata: { team: "x" }, if_exists: "raise", ttl: { strategy: "delete", ttl: 60 } }],
      ["threads:read", { thread_id: id }],
      ["threads:update", { thread_id: id, metadata: { team: "y" } }],
      ["threads:search", { metadata: { team: "y" }, ids: undefined, status: "idle", values: undefined, limit: 5, offset: 0 }],
      ["threads:search", { metadata: { team: "y" }, values: undefined, status: undefined, limit: 0, offset: 0 }],
      ["threads:read", { thread_id: id }],
      ["threads:create", { thread_id: copy.thread_id, metadata: { team: "y" } }],
      ["threads:delete", { thread_id: id }],
    ]);
    for (const { ctx } of authorizer.calls) expect(ctx.headers["x-owner"]).toBe("a");
  });

  it("a filter hides another owner's threads from search and count, and get, patch, delete and copy answer 404", async () => {
    authorizer.decide = (ctx, event, value) => {
      const owner = ctx.headers["x-owner"]!;
      if (event === "threads:create") return { value: { ...value, metadata: { ...(value.metadata as object), owner } }, filter: { owner } };
      if (event.startsWith("threads:")) return { filter: { owner } };
      return undefined;
    };
    const a = clientAs("a");
    const b = clientAs("b");
    const mine = await a.threads.create({ metadata: { tag: "seam-threads" } });
    // The handler's rewrite is what got stored.
    expect(mine.metadata).toEqual({ tag: "seam-threads", owner: "a" });
    expect((await a.threads.get(mine.thread_id)).metadata).toEqual({ tag: "seam-threads", owner: "a" });
    const theirs = await b.threads.create({ metadata: { tag: "seam-threads" } });

    expect((await a.threads.search({ metadata: { tag: "seam-threads" }, limit: 100 })).map((t) => t.thread_id)).toEqual([mine.thread_id]);
    expect((await b.threads.search({ metadata: { tag: "seam-threads" }, limit: 100 })).map((t) => t.thread_id)).toEqual([theirs.thread_id]);
    // Naming a's thread by id or metadata finds nothing.
    expect(await b.threads.search({ ids: [mine.thread_id], limit: 100 })).toEqual([]);
    expect(await b.threads.count({ metadata: { owner: "a" } })).toBe(0);
    expect(await a.threads.count({ metadata: { tag: "seam-threads" } })).toBe(1);

    for (const [method, path, body] of [
      ["GET", `/threads/${mine.thread_id}`, undefined],
      ["PATCH", `/threads/${mine.thread_id}`, { metadata: { stolen: true } }],
      ["POST", `/threads/${mine.thread_id}/copy`, {}],
      ["DELETE", `/threads/${mine.thread_id}`, undefined],
    ] as const) {
      const answer = await raw("b", method, path, body);
      expect({ method, path, status: answer.status, body: answer.body }).toEqual({ method, path, status: 404, body: { detail: `Thread '${mine.thread_id}' not found.` } });
    }
    // Taking over the id with if_exists=do_nothing is refused, not answered with a's thread.
    expect((await raw("b", "POST", "/threads", { thread_id: mine.thread_id, if_exists: "do_nothing" })).status).toBe(409);
    // Nothing b tried changed a's thread, and b's copy made nothing.
    expect((await a.threads.get(mine.thread_id)).metadata).toEqual({ tag: "seam-threads", owner: "a" });
    expect(await b.threads.count({})).toBe(1);
    // a's own copy works and is a's.
    const copy = await a.threads.copy(mine.thread_id);
    expect(copy.metadata).toMatchObject({ tag: "seam-threads", owner: "a" });
  });

  it("a denial is 403 and nothing happens", async () => {
    const a = clientAs("a");
    const thread = await a.threads.create({ metadata: { n: 1 } });
    authorizer.decide = (_ctx, event) => {
      if (event === "threads:update" || event === "threads:delete" || event === "threads:search") throw new AccessDenied("threads", event.split(":")[1]!);
      return undefined;
    };
    const patched = await raw("a", "PATCH", `/threads/${thread.thread_id}`, { metadata: { n: 2 } });
    expect(patched).toEqual({ status: 403, body: { detail: "Not authorized to update threads." } });
    expect((await raw("a", "DELETE", `/threads/${thread.thread_id}`)).status).toBe(403);
    expect((await raw("a", "POST", "/threads/search", {})).status).toBe(403);
    expect((await raw("a", "POST", "/threads/count", {})).status).toBe(403);
    // Creating the copy is refused: no copy is made.
    authorizer.decide = (_ctx, event) => {
      if (event === "threads:create") throw new AccessDenied("threads", "create");
      return undefined;
    };
    expect((await raw("a", "POST", `/threads/${thread.thread_id}/copy`, {})).status).toBe(403);
    expect((await raw("a", "POST", "/threads", {})).status).toBe(403);
    authorizer.decide = () => undefined;
    expect((await a.threads.get(thread.thread_id)).metadata).toEqual({ n: 1 });
    expect(await a.threads.count({ metadata: { n: 1 } })).toBe(1);
  });
  it("state and history ask threads:read, a state update threads:update; a thread outside the filter is 404 there too", async () => {
    const a = clientAs("a");
    const thread = await a.threads.create({ metadata: { owner: "a" }, graphId: "echo" });
    const id = thread.thread_id;
    await a.threads.getState(id);
    await a.threads.getHistory(id);
    expect(authorizer.calls.map((call) => [call.event, call.value])).toEqual([
      ["threads:create", { thread_id: id, metadata: { owner: "a", graph_id: "echo" }, if_exists: "raise" }],
      ["threads:read", { thread_id: id }],
      ["threads:read", { thread_id: id }],
    ]);
    authorizer.decide = (ctx, event) => (event.startsWith("threads:") ? { filter: { owner: ctx.headers["x-owner"]! } } : undefined);
    for (const [method, path, body] of [
      ["GET", `/threads/${id}/state`, undefined],
      ["POST", `/threads/${id}/state/checkpoint`, { checkpoint: {} }],
      ["GET", `/threads/${id}/history`, undefined],
      ["POST", `/threads/${id}/history`, {}],
      ["POST", `/threads/${id}/state`, { values: { messages: [] } }],
    ] as const) {
      const answer = await raw("b", method, path, body);
      expect({ method, path, status: answer.status, body: answer.body }).toEqual({ method, path, status: 404, body: { detail: `Thread '${id}' not found.` } });
    }
    expect(authorizer.calls.at(-1)).toMatchObject({ event: "threads:update", value: { thread_id: id } });
    // The owner still reads it, and nothing b tried wrote a checkpoint.
    expect(await a.threads.getHistory(id)).toEqual([]);
  });
});

describe("runs", () => {
  /** Threads and runs belong to whoever created them (metadata.owner), and are seen only by them. */
  const ownThreads: Decide = (ctx, event, value) => {
    const owner = ctx.headers["x-owner"]!;
    if (event === "threads:create" || event === "threads:create_run") return { value: { ...value, metadata: { ...(value.metadata as object), owner } }, filter: { owner } };
    if (event.startsWith("threads:")) return { filter: { owner } };
    return undefined;
  };

  it("each run action asks the authorizer with the official resource, action and value", async () => {
    const a = clientAs("a");
    const thread = await a.threads.create();
    authorizer.calls = [];
    const run = await a.runs.wait(thread.thread_id, "echo", { input: { messages: [] }, metadata: { n: 1 } });
    expect(run).toBeDefined();
    const [listed] = await a.runs.list(thread.thread_id);
    const runId = listed!.run_id;
    await a.runs.get(thread.thread_id, runId);
    await a.runs.join(thread.thread_id, runId);
    await raw("a", "POST", `/threads/${thread.thread_id}/runs/${runId}/cancel?action=rollback`);
    await a.runs.cancelMany({ threadId: thread.thread_id, status: "pending" });
    await a.runs.delete(thread.thread_id, runId);
    const calls = authorizer.calls.map((call) => [call.event, call.value]);
    expect(calls[0]).toEqual([
      "threads:create_run",
      expect.objectContaining({
        thread_id: thread.thread_id,
        assistant_id: "echo",
        run_id: runId,
        status: "pending",
        metadata: { n: 1 },
        prevent_insert_if_inflight: false,
        multitask_strategy: "enqueue",
        if_not_exists: "reject",
        after_seconds: 0,
      }),
    ]);
    expect(calls.slice(1)).toEqual([
      ["threads:search", { thread_id: thread.thread_id, status: undefined }],
      ["threads:read", { thread_id: thread.thread_id }],
      ["threads:read", { thread_id: thread.thread_id }],
      ["threads:update", { thread_id: thread.thread_id, action: "rollback", metadata: { run_ids: [runId], status: "pending" } }],
      ["threads:update", { thread_id: thread.thread_id, action: "interrupt", metadata: { run_ids: undefined, status: "pending" } }],
      ["threads:delete", { run_id: runId, thread_id: thread.thread_id }],
    ]);
    for (const { ctx } of authorizer.calls) expect(ctx.headers["x-owner"]).toBe("a");
  });

  it("a handler's rewrite of a run's metadata is what the run records, and a new thread takes it too", async () => {
    authorizer.decide = ownThreads;
    const a = clientAs("a");
    const thread = await a.threads.create();
    const run = await a.runs.create(thread.thread_id, "echo", { input: { messages: [] }, metadata: { n: 1 } });
    expect(run.metadata).toEqual({ n: 1, owner: "a" });
    const fresh = randomUUID();
    await a.runs.wait(fresh, "echo", { input: { messages: [] }, ifNotExists: "create" });
    expect((await a.threads.get(fresh)).metadata).toMatchObject({ owner: "a", graph_id: "echo", assistant_id: expect.any(String) });
  });

  it("another owner's thread and runs are not found: create, list, get, join, stream, cancel, delete, prune", async () => {
    authorizer.decide = ownThreads;
    const a = clientAs("a");
    const thread = await a.threads.create();
    const id = thread.thread_id;
    await a.runs.wait(id, "echo", { input: { messages: [] } });
    const [run] = await a.runs.list(id);
    const runId = run!.run_id;
    // The SDK types on_completion loosely ("complete" | "continue"); the API takes "delete" | "keep".
    const stateless = await a.runs.create(null, "echo", { input: { messages: [] }, onCompletion: "keep" as never });
    await a.runs.join(stateless.thread_id, stateless.run_id);

    const threadGone = { detail: `Thread '${id}' not found.` };
    const runGone = { detail: `Run '${runId}' not found.` };
    for (const [method, path, body, detail] of [
      ["POST", `/threads/${id}/runs`, { assistant_id: "echo", input: { messages: [] } }, threadGone],
      ["POST", `/threads/${id}/runs/wait`, { assistant_id: "echo", input: { messages: [] } }, threadGone],
      ["POST", `/threads/${id}/runs/stream`, { assistant_id: "echo", input: { messages: [] } }, threadGone],
      ["GET", `/threads/${id}/runs`, undefined, threadGone],
      ["GET", `/threads/${id}/runs/${runId}`, undefined, runGone],
      ["GET", `/threads/${id}/runs/${runId}/join`, undefined, runGone],
      ["GET", `/threads/${id}/runs/${runId}/stream`, undefined, runGone],
      ["GET", `/runs/${runId}/stream`, undefined, runGone],
      ["POST", `/threads/${id}/runs/${runId}/cancel`, undefined, runGone],
      ["DELETE", `/threads/${id}/runs/${runId}`, undefined, runGone],
      ["POST", "/runs/cancel", { thread_id: id }, threadGone],
      ["GET", `/threads/${stateless.thread_id}/runs/${stateless.run_id}`, undefined, { detail: `Run '${stateless.run_id}' not found.` }],
    ] as const) {
      const answer = await raw("b", method, path, body);
      expect({ method, path, status: answer.status, body: answer.body }).toEqual({ method, path, status: 404, body: detail });
    }
    // Naming a's runs by id cancels nothing; pruning a's thread prunes nothing.
    expect((await raw("b", "POST", "/runs/cancel", { run_ids: [runId] })).status).toBe(204);
    expect(await raw("b", "POST", "/threads/prune", { thread_ids: [id], strategy: "delete" })).toEqual({ status: 200, body: { pruned_count: 0 } });
    // a still has everything, unchanged.
    expect((await a.runs.get(id, runId)).status).toBe("success");
    expect((await a.runs.list(id)).map((r) => r.run_id)).toEqual([runId]);
    expect((await a.threads.get(id)).status).toBe("idle");
  });

  it("a denial of create_run is 403 and creates nothing", async () => {
    const a = clientAs("a");
    const thread = await a.threads.create();
    authorizer.decide = (_ctx, event) => {
      if (event === "threads:create_run") throw new AccessDenied("threads", "create_run");
      return undefined;
    };
    for (const path of [`/threads/${thread.thread_id}/runs`, `/threads/${thread.thread_id}/runs/wait`, "/runs", "/runs/wait", "/runs/stream"]) {
      expect((await raw("a", "POST", path, { assistant_id: "echo", input: { messages: [] } })).status, path).toBe(403);
    }
    expect((await raw("a", "POST", "/runs/batch", [{ assistant_id: "echo", input: { messages: [] } }])).status).toBe(403);
    authorizer.decide = () => undefined;
    expect(await a.runs.list(thread.thread_id)).toEqual([]);
    expect((await a.threads.get(thread.thread_id)).status).toBe("idle");
  });
});

describe("crons", () => {
  it("each cron action asks the authorizer with the official resource, action and value", async () => {
    const a = clientAs("a");
    const thread = await a.threads.create();
    authorizer.calls = [];
    const cron = await a.crons.create("echo", { schedule: "0 9 * * *", input: { messages: [] }, metadata: { team: "x" }, endTime: "2099-01-01T00:00:00Z" });
    const bound = await a.crons.createForThread(thread.thread_id, "echo", { schedule: "0 10 * * *" });
    await a.crons.search({ assistantId: "echo", threadId: thread.thread_id, limit: 5 });
    await a.crons.count({ metadata: { team: "x" } });
    await raw("a", "GET", `/runs/crons/${cron.cron_id}`);
    await a.crons.update(cron.cron_id, { schedule: "0 8 * * *", metadata: { team: "y" } });
    await a.crons.delete(bound.cron_id);

    expect(authorizer.calls.map((call) => [call.event, call.value])).toEqual([
      [
        "crons:create",
        {
          cron_id: cron.cron_id,
          thread_id: null,
          schedule: "0 9 * * *",
          end_time: "2099-01-01T00:00:00Z",
          payload: { input: { messages: [] } },
          metadata: { team: "x" },
          user_id: null,
        },
      ],
      ["crons:create", { cron_id: bound.cron_id, thread_id: thread.thread_id, schedule: "0 10 * * *", end_time: null, payload: {}, metadata: {}, user_id: null }],
      ["crons:search", { assistant_id: "echo", thread_id: thread.thread_id, limit: 5, offset: 0 }],
      ["crons:search", { assistant_id: undefined, thread_id: undefined }],
      ["crons:read", { cron_id: cron.cron_id }],
      ["crons:update", { cron_id: cron.cron_id, payload: undefined, schedule: "0 8 * * *", metadata: { team: "y" } }],
      ["crons:delete", { cron_id: bound.cron_id }],
    ]);
    for (const { ctx } of authorizer.calls) expect(ctx.headers["x-owner"]).toBe("a");
    await a.crons.delete(cron.cron_id);
  });

  it("a filter hides another owner's crons: search and count leave them out, get, patch and delete answer 404, and their threads take no cron", async () => {
    authorizer.decide = (ctx, event, value) => {
      const owner = ctx.headers["x-owner"]!;
      if (event === "crons:create" || event === "threads:create") return { value: { ...value, metadata: { ...(value.metadata as object), owner } }, filter: { owner } };
      if (event.startsWith("crons:") || event.startsWith("threads:")) return { filter: { owner } };
      return undefined;
    };
    const a = clientAs("a");
    const b = clientAs("b");
    const mine = await a.crons.create("echo", { schedule: "0 9 * * *", metadata: { tag: "seam-crons" } });
    expect(mine.metadata).toEqual({ tag: "seam-crons", owner: "a" });
    const theirs = await b.crons.create("echo", { schedule: "0 9 * * *", metadata: { tag: "seam-crons" } });
    expect((await a.crons.search({ metadata: { tag: "seam-crons" } })).map((c) => c.cron_id)).toEqual([mine.cron_id]);
    expect((await b.crons.search({ metadata: { tag: "seam-crons" } })).map((c) => c.cron_id)).toEqual([theirs.cron_id]);
    expect(await b.crons.count({ metadata: { owner: "a" } })).toBe(0);
    for (const [method, path, body] of [
      ["GET", `/runs/crons/${mine.cron_id}`, undefined],
      ["PATCH", `/runs/crons/${mine.cron_id}`, { enabled: false }],
      ["DELETE", `/runs/crons/${mine.cron_id}`, undefined],
    ] as const) {
      const answer = await raw("b", method, path, body);
      expect({ method, path, status: answer.status, body: answer.body }).toEqual({ method, path, status: 404, body: { detail: `Cron '${mine.cron_id}' not found.` } });
    }
    const thread = await a.threads.create();
    expect((await raw("b", "POST", `/threads/${thread.thread_id}/runs/crons`, { assistant_id: "echo", schedule: "0 9 * * *" })).status).toBe(404);
    // Nothing b tried changed a's cron.
    const after = (await raw("a", "GET", `/runs/crons/${mine.cron_id}`)).body as { enabled: boolean; updated_at: string };
    expect(after).toMatchObject({ enabled: true, updated_at: mine.updated_at });
    expect(await a.crons.count({ threadId: thread.thread_id })).toBe(0);
    await a.crons.delete(mine.cron_id);
    await b.crons.delete(theirs.cron_id);
  });

  it("a denial is 403 and nothing happens", async () => {
    const a = clientAs("a");
    const cron = await a.crons.create("echo", { schedule: "0 9 * * *", metadata: { tag: "seam-denied" } });
    authorizer.decide = (_ctx, event) => {
      if (event.startsWith("crons:")) throw new AccessDenied("crons", event.split(":")[1]!);
      return undefined;
    };
    for (const [method, path, body] of [
      ["POST", "/runs/crons", { assistant_id: "echo", schedule: "0 9 * * *", metadata: { tag: "seam-denied" } }],
      ["PATCH", `/runs/crons/${cron.cron_id}`, { schedule: "0 1 * * *" }],
      ["DELETE", `/runs/crons/${cron.cron_id}`, undefined],
      ["GET", `/runs/crons/${cron.cron_id}`, undefined],
      ["POST", "/runs/crons/search", {}],
    ] as const) {
      expect((await raw("a", method, path, body)).status, `${method} ${path}`).toBe(403);
    }
    authorizer.decide = () => undefined;
    expect((await a.crons.search({ metadata: { tag: "seam-denied" } })).map((c) => [c.cron_id, c.schedule])).toEqual([[cron.cron_id, "0 9 * * *"]]);
    await a.crons.delete(cron.cron_id);
  });
});
