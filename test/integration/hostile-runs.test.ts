/**
 * Runs that meet hostile values and slow neighbours (issue 11): a graph whose
 * output Baton cannot store (finding 4), system assistants (finding 11),
 * `/info` as the spec lists it (finding 13), and webhooks that must not hold
 * a worker slot (finding 7, worker side). On every backend (vitest.config.ts).
 */
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemAssistantId } from "../../src/core/assistants.ts";
import { LONE_SURROGATE } from "../fixtures/hostile-runs/graphs.ts";
import pg from "pg";
import { SCALE_OUT, startServer, type TestServer } from "../helpers/server.ts";

const PROJECT = join(import.meta.dirname, "../fixtures/hostile-runs/langgraph.json");

let t: TestServer;
beforeAll(async () => {
  t = await startServer({ configPath: PROJECT });
});
afterAll(async () => {
  await t.close();
});

type Event = { event: string; data: unknown };

/** Streams one run of `hostile` on a new thread to its end; resolves the thread, the events and the run's record. */
async function streamHostile(make: string) {
  const thread = await t.client.threads.create();
  const events: Event[] = [];
  for await (const chunk of t.client.runs.stream(thread.thread_id, "hostile", { input: { make }, streamMode: ["values", "custom"] })) {
    events.push(chunk);
  }
  const runs = await t.client.runs.list(thread.thread_id);
  return { thread, events, runs };
}

const contents = (values: unknown) => ((values as { messages?: { content: unknown }[] }).messages ?? []).map((m) => m.content);

describe("a graph's output Baton cannot store (finding 4)", () => {
  it.each([
    ["message:surrogate", /The graph's output contains a lone UTF-16 surrogate at values\.messages\.0\.content; Baton cannot store it/],
    ["message:nul", /The graph's output contains U\+0000 \(NUL\) at values\.messages\.0\.content; Baton cannot store it/],
    ["key:surrogate", /contains a lone UTF-16 surrogate at values\.extra\."bad \ufffd text" \(a key\)/],
    ["interrupt:surrogate", /contains a lone UTF-16 surrogate at interrupt\.0\.value\.question/],
    ["interrupt:nul", /contains U\+0000 \(NUL\) at interrupt\.0\.value\.question/],
  ])("%s: the run's own error, recorded once; the thread keeps its last state and takes the next run", async (make, message) => {
    const { thread, events, runs } = await streamHostile(make);
    // One attempt (a crash-looping run shows a metadata event per attempt, or never ends).
    expect(events.filter((e) => e.event === "metadata")).toHaveLength(1);
    const errors = events.filter((e) => e.event === "error");
    expect(errors).toHaveLength(1);
    expect((errors[0]!.data as { message: string }).message).toMatch(message);
    expect(runs).toHaveLength(1);
    expect(runs[0]!.status).toBe("error");

    const after = await t.client.threads.get(thread.thread_id);
    expect(after.status).toBe("error");
    expect(after.interrupts).toEqual({});
    // The state stops before the step whose output was refused.
    const state = await t.client.threads.getState(thread.thread_id);
    expect(contents(state.values)).toEqual(["first step"]);

    // The thread is not blocked: the next run on it succeeds at once.
    const next = (await t.client.runs.wait(thread.thread_id, "hostile", { input: { make: "ok" } })) as Record<string, unknown>;
    expect(contents(next)).toEqual(["first step", "fine"]);
    expect((await t.client.threads.get(thread.thread_id)).status).toBe("idle");
  });

  // Postgres only: there a checkpoint write is a round trip that can still be
  // on its way when a later write is refused (SQLite writes at once).
  it.runIf(SCALE_OUT)("key:surrogate while the step before's checkpoint write is slow: the run ends after that write, and the thread keeps the step", async () => {
    const thread = await t.client.threads.create();
    const db = new pg.Client({ connectionString: t.databaseUrl });
    await db.connect();
    try {
      // A slow database for this thread's checkpoints only: each insert takes a second, so the
      // second step's refused write comes while the first step's checkpoint is still in flight.
      await db.query(`CREATE FUNCTION slow_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$`);
      await db.query(`CREATE TRIGGER slow_checkpoint BEFORE INSERT ON checkpoints FOR EACH ROW WHEN (NEW.thread_id = '${thread.thread_id}') EXECUTE FUNCTION slow_checkpoint()`);
      const events: Event[] = [];
      for await (const chunk of t.client.runs.stream(thread.thread_id, "hostile", { input: { make: "key:surrogate" }, streamMode: ["values"] })) events.push(chunk);
      expect(events.filter((e) => e.event === "error")).toHaveLength(1);
      // Without waiting, the run was settled first and the late checkpoint refused as another attempt's.
      const state = await t.client.threads.getState(thread.thread_id);
      expect(contents(state.values)).toEqual(["first step"]);
      expect((await t.client.threads.get(thread.thread_id)).status).toBe("error");
    } finally {
      await db.query("DROP TRIGGER IF EXISTS slow_checkpoint ON checkpoints").catch(() => undefined);
      await db.end();
    }
  });

  it.each([["error:surrogate"], ["error:nul"]])("%s: a graph's error message is recorded with U+FFFD in place of what cannot be stored", async (make) => {
    const { thread, events, runs } = await streamHostile(make);
    expect(events.filter((e) => e.event === "metadata")).toHaveLength(1);
    expect(runs).toHaveLength(1);
    expect(runs[0]!.status).toBe("error");
    const output = (await t.client.runs.join(thread.thread_id, runs[0]!.run_id)) as { __error__?: { message: string } };
    expect(output.__error__?.message).toBe("failed with bad \ufffd text");
    expect((await t.client.threads.get(thread.thread_id)).status).toBe("error");
    const next = (await t.client.runs.wait(thread.thread_id, "hostile", { input: { make: "ok" } })) as Record<string, unknown>;
    expect(contents(next).at(-1)).toBe("fine");
  });

  it.each([["store:surrogate"], ["store:nul"]])("%s: a store item the graph puts is refused alike on every backend, and nothing is stored", async (make) => {
    const { thread, events, runs } = await streamHostile(make);
    expect(events.filter((e) => e.event === "metadata")).toHaveLength(1);
    const errors = events.filter((e) => e.event === "error");
    expect((errors[0]!.data as { message: string }).message).toMatch(/The item the graph put in the store at .* contains (a lone UTF-16 surrogate|U\+0000 \(NUL\)) at value\.text; Baton cannot store it/);
    expect(runs.map((r) => r.status)).toEqual(["error"]);
    expect(await t.client.store.getItem(["hostile", make.replace(":", "-")], "item")).toBeNull();
    const next = (await t.client.runs.wait(thread.thread_id, "hostile", { input: { make: "ok" } })) as Record<string, unknown>;
    expect(contents(next).at(-1)).toBe("fine");
  });

  it("output nested too deep to serialize: the run's own error, recorded once", async () => {
    const { thread, events, runs } = await streamHostile("deep");
    expect(events.filter((e) => e.event === "metadata")).toHaveLength(1);
    expect(runs.map((r) => r.status)).toEqual(["error"]);
    expect((await t.client.threads.get(thread.thread_id)).status).toBe("error");
    const next = (await t.client.runs.wait(thread.thread_id, "hostile", { input: { make: "ok" } })) as Record<string, unknown>;
    expect(contents(next).at(-1)).toBe("fine");
  });

  it("a streamed value that is never stored reaches the client as the graph wrote it", async () => {
    const { events, runs } = await streamHostile("stream:surrogate");
    expect(events.filter((e) => e.event === "custom").map((e) => e.data)).toEqual([{ text: `bad ${LONE_SURROGATE} text` }]);
    expect(runs[0]!.status).toBe("success");
  });
});

describe("a graph's output Baton cannot store, with the project's own checkpointer (finding 4)", () => {
  it.each([
    ["message:surrogate", "a lone UTF-16 surrogate"],
    ["message:nul", "U+0000 (NUL)"],
  ])("%s: the worker refuses the outcome: the run's own error, recorded once", async (make, what) => {
    const own = await startServer({ configPath: join(import.meta.dirname, "../fixtures/hostile-runs/own-checkpointer.json") });
    try {
      const thread = await own.client.threads.create();
      const events: Event[] = [];
      for await (const chunk of own.client.runs.stream(thread.thread_id, "hostile", { input: { make }, streamMode: ["values"] })) events.push(chunk);
      expect(events.filter((e) => e.event === "metadata")).toHaveLength(1);
      const errors = events.filter((e) => e.event === "error");
      expect(errors).toHaveLength(1);
      expect((errors[0]!.data as { message: string }).message).toContain(`The graph's output contains ${what} at values.messages.1.content; Baton cannot store it`);
      const runs = await own.client.runs.list(thread.thread_id);
      expect(runs.map((r) => r.status)).toEqual(["error"]);
      expect((await own.client.threads.get(thread.thread_id)).status).toBe("error");
    } finally {
      await own.close();
    }
  });
});

describe("system assistants (finding 11)", () => {
  it("refuses to delete a graph's built-in assistant (409), by id or graph id; runs on the graph still work", async () => {
    const id = systemAssistantId("echo");
    for (const target of [id, "echo"]) {
      const response = await fetch(`${t.url}/assistants/${target}`, { method: "DELETE" });
      expect(response.status).toBe(409);
      const body = (await response.json()) as { detail: string };
      expect(body.detail).toContain("built-in assistant of graph 'echo'");
    }
    expect((await t.client.assistants.get(id)).assistant_id).toBe(id);
    const thread = await t.client.threads.create();
    const answer = (await t.client.runs.wait(thread.thread_id, "echo", { input: { messages: [] } })) as Record<string, unknown>;
    expect(contents(answer)).toEqual(["echo"]);
    // An assistant of one's own for the same graph is deleted as before.
    const own = await t.client.assistants.create({ graphId: "echo" });
    await t.client.assistants.delete(own.assistant_id);
    await expect(t.client.assistants.get(own.assistant_id)).rejects.toThrow(/404/);
  });

  it("patches a built-in assistant into a new version, as the official server does", async () => {
    const id = systemAssistantId("hostile");
    const patched = await t.client.assistants.update(id, { metadata: { team: "x" } });
    expect(patched.version).toBe(2);
    expect(patched.metadata).toEqual({ created_by: "system", team: "x" });
    const thread = await t.client.threads.create();
    const answer = (await t.client.runs.wait(thread.thread_id, "hostile", { input: { make: "ok" } })) as Record<string, unknown>;
    expect(contents(answer)).toEqual(["first step", "fine"]);
  });
});

describe("/info (finding 13)", () => {
  it("answers every field the spec lists, with the LangGraph.js version that runs the graphs", async () => {
    const info = (await (await fetch(`${t.url}/info`)).json()) as Record<string, unknown>;
    const langgraph = (JSON.parse(readFileSync(join(import.meta.dirname, "../../node_modules/@langchain/langgraph/package.json"), "utf8")) as { version: string }).version;
    expect(info).toMatchObject({
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      langgraph_js_version: langgraph,
      langgraph_py_version: langgraph,
      context: "js",
      flags: { assistants: true, crons: true, langsmith: false, langsmith_tracing_replicas: false },
      metadata: { server: "baton" },
    });
  });
});

/** A webhook target that holds every request until released, and says whether a held request's connection closed. */
async function holdingTarget() {
  const held: { request: IncomingMessage; response: ServerResponse; closed: boolean }[] = [];
  let arrived!: () => void;
  const first = new Promise<void>((resolve) => (arrived = resolve));
  const server = createServer((request, response) => {
    const entry = { request, response, closed: false };
    response.on("close", () => (entry.closed = true));
    held.push(entry);
    arrived();
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    held,
    first,
    async close() {
      for (const entry of held) entry.response.end("{}");
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe("webhooks and worker slots (finding 7, worker side)", () => {
  it("a webhook target that does not answer does not delay the next run when there is one worker slot", async () => {
    const target = await holdingTarget();
    const one = await startServer({ configPath: PROJECT, workers: 1, webhookAllowPrivate: true });
    try {
      const a = await one.client.threads.create();
      await one.client.runs.wait(a.thread_id, "echo", { input: { messages: [] }, webhook: target.url });
      await target.first;
      // The webhook of the first run is held open; the only slot must be free for the second.
      const b = await one.client.threads.create();
      const answer = (await one.client.runs.wait(b.thread_id, "echo", { input: { messages: [] } })) as Record<string, unknown>;
      expect(contents(answer)).toEqual(["echo"]);
      expect(target.held).toHaveLength(1);
      expect(target.held[0]!.closed).toBe(false);
    } finally {
      await target.close();
      await one.close();
    }
  });
});
