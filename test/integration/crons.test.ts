/**
 * Crons through the official SDK (issue 14 item 1, docs/crons.md), on
 * each backend (this file is in the embedded, embedded-inline and scale-out
 * vitest projects): create, get, search, count, patch, delete and their
 * validation; a stateless cron that deletes or keeps its runs' threads; a
 * cron bound to a thread; another user's cron answers 404.
 *
 * Firing crons use six-field schedules (seconds first), so a test waits
 * for a second, not a minute; what it awaits is the run (its webhook, its
 * thread), never a fixed time.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { Cron as CronPattern } from "croner";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, loadProject } from "../../src/config.ts";
import { createLogger, createServer } from "../../src/server.ts";
import { freshDatabase } from "../helpers/postgres.ts";
import { FIXTURES, human, REDIS_URL, SCALE_OUT, startGatedRun, startServer, until, type TestServer } from "../helpers/server.ts";

/** Webhook bodies the fixture project's app received (test/fixtures/graphs/app.ts), shared through globalThis. */
const hooks = ((globalThis as Record<string, unknown>).__batonWebhooks ??= []) as { run_id: string; thread_id: string; metadata: Record<string, unknown>; status: string }[];
const hooksOf = (cronId: string) => hooks.filter((h) => h.metadata?.cron_id === cronId);

/** The SDK's errors carry the status and the server's body. */
async function refusal(promise: Promise<unknown>): Promise<{ status: number; detail: string }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { status?: number; message?: string };
    return { status: e.status ?? 0, detail: e.message ?? "" };
  }
  throw new Error("expected the request to be refused");
}

let t: TestServer;
let client: Client;
beforeAll(async () => {
  t = await startServer();
  client = t.client;
}, 60_000);
afterAll(async () => {
  await t?.close();
});

describe("cron records", () => {
  it("creates a stateless cron with its fields and next run date in its timezone", async () => {
    const before = Date.now();
    const cron = await client.crons.create("echo", {
      schedule: "0 9 * * 1-5",
      timezone: "America/New_York",
      input: human("good morning"),
      metadata: { team: "crud", n: 1 },
      config: { tags: ["daily"] },
      webhook: "/hooks/run-done",
    });
    expect(cron).toMatchObject({
      schedule: "0 9 * * 1-5",
      timezone: "America/New_York",
      thread_id: null,
      on_run_completed: "delete",
      enabled: true,
      end_time: null,
      metadata: { team: "crud", n: 1 },
      payload: { input: human("good morning"), config: { tags: ["daily"] }, webhook: "/hooks/run-done" },
    });
    const expected = new CronPattern("0 9 * * 1-5", { timezone: "America/New_York", paused: true }).nextRun(new Date(before))!;
    expect(cron.next_run_date).toBe(expected.toISOString());
    expect(await client.crons.search({ metadata: { team: "crud" } })).toEqual([expect.objectContaining({ cron_id: cron.cron_id })]);
    const fetched = await fetch(`${t.url}/runs/crons/${cron.cron_id}`).then((r) => r.json());
    expect(fetched).toEqual(cron);
    await client.crons.delete(cron.cron_id);
  });

  it("searches by assistant (id or graph name), thread and enabled, sorts, pages, selects and counts", async () => {
    const tag = crypto.randomUUID();
    const thread = await client.threads.create();
    const a = await client.crons.create("echo", { schedule: "0 1 * * *", metadata: { tag } });
    const b = await client.crons.createForThread(thread.thread_id, "echo", { schedule: "0 2 * * *", metadata: { tag } });
    const c = await client.crons.create("fail", { schedule: "0 3 * * *", metadata: { tag }, enabled: false });
    const ids = (list: { cron_id: string }[]) => list.map((x) => x.cron_id);

    // By next run date: the disabled cron (no next run) comes last either way.
    const byNext = [a, b].sort((x, y) => Date.parse(x.next_run_date) - Date.parse(y.next_run_date));
    expect(ids(await client.crons.search({ metadata: { tag }, sortBy: "next_run_date", sortOrder: "asc" }))).toEqual([...ids(byNext), c.cron_id]);
    expect(ids(await client.crons.search({ metadata: { tag }, sortBy: "next_run_date", sortOrder: "desc" }))).toEqual([...ids(byNext).reverse(), c.cron_id]);
    expect(ids(await client.crons.search({ metadata: { tag }, assistantId: "echo", sortBy: "created_at", sortOrder: "asc" }))).toEqual([a.cron_id, b.cron_id]);
    expect(ids(await client.crons.search({ metadata: { tag }, threadId: thread.thread_id }))).toEqual([b.cron_id]);
    expect(ids(await client.crons.search({ metadata: { tag }, enabled: false }))).toEqual([c.cron_id]);
    expect(ids(await client.crons.search({ metadata: { tag }, sortBy: "created_at", sortOrder: "desc", limit: 1, offset: 1 }))).toEqual([b.cron_id]);
    expect(await client.crons.search({ metadata: { tag }, select: ["cron_id", "schedule"], sortBy: "created_at", sortOrder: "asc", limit: 1 })).toEqual([
      { cron_id: a.cron_id, schedule: "0 1 * * *" },
    ]);
    expect(await client.crons.count({ metadata: { tag } })).toBe(3);
    expect(await client.crons.count({ metadata: { tag }, assistantId: "echo" })).toBe(2);
    expect(await client.crons.count({ metadata: { tag }, threadId: thread.thread_id })).toBe(1);
    for (const cron of [a, b, c]) await client.crons.delete(cron.cron_id);
    expect(await client.crons.count({ metadata: { tag } })).toBe(0);
  });

  it("patches schedule, timezone, end time, enabled, metadata (merged) and run fields; the next run date follows", async () => {
    const cron = await client.crons.create("echo", { schedule: "0 9 * * *", metadata: { keep: 1 }, input: human("a"), endTime: "2099-01-01T00:00:00Z" });
    // The end time is stored normalised (UTC, milliseconds).
    expect(cron.end_time).toBe("2099-01-01T00:00:00.000Z");
    // Yearly (1 July 18:30 in Tokyo, 09:30 UTC): its next time does not pass while the test runs, so re-enabling gives it again.
    const moved = await client.crons.update(cron.cron_id, { schedule: "30 18 1 7 *", timezone: "Asia/Tokyo", metadata: { added: 2 }, input: human("b") });
    expect(moved).toMatchObject({ schedule: "30 18 1 7 *", timezone: "Asia/Tokyo", metadata: { keep: 1, added: 2 }, payload: { input: human("b") }, end_time: "2099-01-01T00:00:00.000Z" });
    expect(new Date(moved.next_run_date!).toISOString()).toMatch(/T09:30:00\.000Z$/);
    expect(Date.parse(moved.updated_at)).toBeGreaterThanOrEqual(Date.parse(cron.updated_at));
    const cleared = await client.crons.update(cron.cron_id, { endTime: null });
    expect(cleared.end_time).toBeNull();
    const disabled = await client.crons.update(cron.cron_id, { enabled: false });
    expect(disabled).toMatchObject({ enabled: false, next_run_date: null });
    const enabled = await client.crons.update(cron.cron_id, { enabled: true });
    expect(enabled.next_run_date).toBe(moved.next_run_date);
    const ended = await client.crons.update(cron.cron_id, { endTime: new Date(Date.now() + 60_000).toISOString() });
    expect(ended.next_run_date).toBeNull();
    await client.crons.delete(cron.cron_id);
    expect((await refusal(client.crons.update(cron.cron_id, { enabled: true }))).status).toBe(404);
  });

  it("deletes: gone for get, patch and delete (404)", async () => {
    const cron = await client.crons.create("echo", { schedule: "0 0 * * *" });
    await client.crons.delete(cron.cron_id);
    expect((await fetch(`${t.url}/runs/crons/${cron.cron_id}`)).status).toBe(404);
    expect((await refusal(client.crons.delete(cron.cron_id))).status).toBe(404);
  });

  it("a thread's crons go with the thread", async () => {
    const thread = await client.threads.create();
    const cron = await client.crons.createForThread(thread.thread_id, "echo", { schedule: "0 0 * * *" });
    expect(cron).toMatchObject({ thread_id: thread.thread_id, on_run_completed: null });
    await client.threads.delete(thread.thread_id);
    expect((await fetch(`${t.url}/runs/crons/${cron.cron_id}`)).status).toBe(404);
  });

  it("an assistant's crons go with the assistant", async () => {
    const assistant = await client.assistants.create({ graphId: "echo" });
    const cron = await client.crons.create(assistant.assistant_id, { schedule: "0 0 * * *" });
    const other = await client.crons.create("echo", { schedule: "0 0 * * *" });
    await client.assistants.delete(assistant.assistant_id);
    expect((await fetch(`${t.url}/runs/crons/${cron.cron_id}`)).status).toBe(404);
    expect((await fetch(`${t.url}/runs/crons/${other.cron_id}`)).status).toBe(200);
    await client.crons.delete(other.cron_id);
  });

  it("refuses what it cannot schedule, saying what to fix", async () => {
    const thread = await client.threads.create();
    const cases: [() => Promise<unknown>, number, RegExp][] = [
      [() => client.crons.create("echo", { schedule: "every morning" }), 422, /Invalid schedule 'every morning'.*five fields/],
      [() => client.crons.create("echo", { schedule: "61 * * * *" }), 422, /Invalid schedule.*minute/],
      [() => client.crons.create("echo", { schedule: "0 0 0 1 1 * 2030" }), 422, /Invalid schedule/],
      [() => client.crons.create("echo", { schedule: "0 0 30 2 *" }), 422, /never fires/],
      [() => client.crons.create("echo", { schedule: "0 9 * * *", timezone: "Mars/Olympus" }), 422, /Unknown timezone 'Mars\/Olympus'/],
      [() => client.crons.create("echo", { schedule: "0 9 * * *", endTime: "tomorrow" }), 422, /end_time/],
      [() => client.crons.create("no-such-graph", { schedule: "0 9 * * *" }), 404, /Assistant 'no-such-graph' not found/],
      [() => client.crons.createForThread(crypto.randomUUID(), "echo", { schedule: "0 9 * * *" }), 404, /Thread .* not found/],
      [() => client.crons.createForThread(thread.thread_id, "echo", { schedule: "0 9 * * *", onRunCompleted: "keep" }), 422, /on_run_completed applies to stateless crons/],
      [() => client.crons.update(crypto.randomUUID(), { schedule: "0 9 * * *" }), 404, /Cron .* not found/],
      [() => client.crons.search({ select: ["now"] }), 422, /select/],
    ];
    for (const [request, status, detail] of cases) {
      const answer = await refusal(request());
      expect(answer, String(detail)).toMatchObject({ status });
      expect(answer.detail).toMatch(detail);
    }
    const cron = await client.crons.create("echo", { schedule: "0 9 * * *" });
    expect((await refusal(client.crons.update(cron.cron_id, { schedule: "bad" }))).status).toBe(422);
    expect((await client.crons.search({ metadata: {} })).some((c) => c.cron_id === cron.cron_id && c.schedule === "0 9 * * *")).toBe(true);
    await client.crons.delete(cron.cron_id);
  });

  it("says crons are served in /info", async () => {
    const info = (await fetch(`${t.url}/info`).then((r) => r.json())) as { flags: { crons: boolean } };
    expect(info.flags.crons).toBe(true);
  });
});

describe("firing", () => {
  it("a stateless cron deletes its runs' threads by default (on_run_completed delete)", async () => {
    const cron = await client.crons.create("echo", { schedule: "* * * * * *", input: human("tick"), webhook: "/hooks/run-done" });
    const [first] = await until(async () => (hooksOf(cron.cron_id).length >= 1 ? hooksOf(cron.cron_id) : undefined), "the cron's first run", 20_000);
    await client.crons.delete(cron.cron_id);
    expect(first).toMatchObject({ status: "success", metadata: { cron_id: cron.cron_id } });
    // The thread went with its run (a temporary thread).
    await until(async () => ((await fetch(`${t.url}/threads/${first!.thread_id}`)).status === 404 ? true : undefined), "the run's thread to go");
  });

  it("a stateless cron with on_run_completed keep leaves a thread per run, with the run's state", async () => {
    const cron = await client.crons.create("echo", { schedule: "* * * * * *", input: human("keep me"), onRunCompleted: "keep", webhook: "/hooks/run-done" });
    expect((cron as { on_run_completed?: string }).on_run_completed).toBe("keep");
    const runs = await until(async () => (hooksOf(cron.cron_id).length >= 2 ? hooksOf(cron.cron_id) : undefined), "two runs of the cron", 20_000);
    await client.crons.delete(cron.cron_id);
    const threads = new Set(runs.map((r) => r.thread_id));
    expect(threads.size).toBe(runs.length);
    const state = await client.threads.getState<{ messages: { content: string }[] }>(runs[0]!.thread_id);
    expect(state.values.messages.map((m) => m.content)).toContain("keep me");
    const kept = await client.threads.search({ metadata: { cron_id: cron.cron_id } });
    expect(kept.length).toBeGreaterThanOrEqual(2);
    // Each scheduled time once: no two runs name the same time.
    const times = runs.map((r) => r.metadata.cron_scheduled_at);
    expect(new Set(times).size).toBe(times.length);
  });

  it("a thread's cron runs on that thread, one run per scheduled time", async () => {
    const thread = await client.threads.create({ metadata: { purpose: "cron" } });
    const cron = await client.crons.createForThread(thread.thread_id, "echo", { schedule: "* * * * * *", input: human("again") });
    const runs = await until(async () => {
      const list = await client.runs.list(thread.thread_id);
      return list.filter((r) => r.status === "success").length >= 2 ? list : undefined;
    }, "two runs on the thread", 20_000);
    await client.crons.delete(cron.cron_id);
    expect(runs.every((r) => r.metadata?.cron_id === cron.cron_id)).toBe(true);
    const times = runs.map((r) => r.metadata?.cron_scheduled_at);
    expect(new Set(times).size).toBe(times.length);
    const state = await client.threads.getState<{ messages: { content: string }[] }>(thread.thread_id);
    expect(state.values.messages.filter((m) => m.content === "again").length).toBeGreaterThanOrEqual(2);
  });
});

describe("a fire the run path refuses", () => {
  it("under reject, the times its thread is busy are skipped; it fires again once the thread is free", async () => {
    const { thread, gate } = await startGatedRun(client);
    const cron = await client.crons.createForThread(thread.thread_id, "echo", { schedule: "* * * * * *", input: human("when free"), multitaskStrategy: "reject" });
    const first = Date.parse(cron.next_run_date);
    const nextRun = async () => Date.parse(((await fetch(`${t.url}/runs/crons/${cron.cron_id}`).then((r) => r.json())) as { next_run_date: string }).next_run_date);
    // Two scheduled times pass while the gated run holds the thread: each is refused (409 for a
    // request) and skipped, the cron moves on, and no run is added.
    await until(async () => ((await nextRun()) >= first + 2_000 ? true : undefined), "two refused fires", 20_000);
    expect((await client.runs.list(thread.thread_id)).map((r) => r.metadata?.cron_id)).toEqual([undefined]);
    gate.open();
    const fired = await until(async () => {
      const runs = await client.runs.list(thread.thread_id);
      return runs.some((r) => r.metadata?.cron_id === cron.cron_id) ? runs : undefined;
    }, "a fire once the thread is free", 20_000);
    await client.crons.delete(cron.cron_id);
    expect(fired.some((r) => r.metadata?.cron_id === cron.cron_id)).toBe(true);
  });
});

describe("another user's crons", () => {
  let auth: TestServer;
  const as = (token: string) => new Client({ apiUrl: auth.url, defaultHeaders: { authorization: `Bearer ${token}` } });
  beforeAll(async () => {
    auth = await startServer({ configPath: join(import.meta.dirname, "../fixtures/auth/langgraph.fuzz.json") });
  }, 60_000);
  afterAll(async () => {
    await auth?.close();
  });

  it("answer 404 and stay out of searches and counts; their runs are their owner's", async () => {
    const alice = as("token-alice");
    const bob = as("token-bob");
    const tag = crypto.randomUUID();
    const cron = await alice.crons.create("echo", { schedule: "0 9 * * *", metadata: { tag } });
    expect(cron).toMatchObject({ user_id: "alice", metadata: { tag, owner: "alice" } });
    expect((await refusal(bob.crons.update(cron.cron_id, { schedule: "* * * * *" }))).status).toBe(404);
    expect((await refusal(bob.crons.delete(cron.cron_id))).status).toBe(404);
    const read = await fetch(`${auth.url}/runs/crons/${cron.cron_id}`, { headers: { authorization: "Bearer token-bob" } });
    expect(read.status).toBe(404);
    expect(await bob.crons.search({ metadata: { tag } })).toEqual([]);
    expect(await bob.crons.count({ metadata: { tag } })).toBe(0);
    expect(await alice.crons.count({ metadata: { tag } })).toBe(1);
    // Bob cannot put a cron on alice's thread.
    const thread = await alice.threads.create();
    expect((await refusal(bob.crons.createForThread(thread.thread_id, "echo", { schedule: "0 9 * * *" }))).status).toBe(404);
    const mine = await alice.crons.createForThread(thread.thread_id, "echo", { schedule: "* * * * * *", input: human("for alice") });
    const [run] = await until(async () => {
      const list = await alice.runs.list(thread.thread_id);
      return list.length > 0 ? list : undefined;
    }, "alice's cron run", 20_000);
    await alice.crons.delete(mine.cron_id);
    await alice.crons.delete(cron.cron_id);
    expect(run!.metadata).toMatchObject({ cron_id: mine.cron_id, owner: "alice" });
  });
});

describe("a cron's runs carry its owner's identity", () => {
  let auth: TestServer;
  beforeAll(async () => {
    auth = await startServer({ configPath: join(import.meta.dirname, "../fixtures/auth/langgraph.json") });
  }, 60_000);
  afterAll(async () => {
    await auth?.close();
  });

  it("not langgraph_auth_* keys a client stored in its config (dropped at create and patch)", async () => {
    const alice = new Client({ apiUrl: auth.url, defaultHeaders: { authorization: "Bearer token-alice" } });
    const forged = { langgraph_auth_user_id: "bob", langgraph_auth_user: { identity: "bob" }, langgraph_auth_permissions: ["all"], kept: 1 };
    const thread = await alice.threads.create();
    const cron = await alice.crons.createForThread(thread.thread_id, "whoami", { schedule: "0 0 1 1 *", input: human("who"), config: { configurable: forged } });
    expect((cron.payload as { config: unknown }).config).toEqual({ configurable: { kept: 1 } });
    const patched = await alice.crons.update(cron.cron_id, { schedule: "* * * * * *", config: { configurable: forged } });
    expect((patched.payload as { config: unknown }).config).toEqual({ configurable: { kept: 1 } });
    const [run] = await until(async () => {
      const list = await alice.runs.list(thread.thread_id);
      return list.length > 0 ? list : undefined;
    }, "the cron's run", 20_000);
    await alice.crons.delete(cron.cron_id);
    const output = (await alice.runs.join(thread.thread_id, run!.run_id)) as { messages: { content: string }[] };
    const said = JSON.parse(output.messages.at(-1)!.content) as Record<string, unknown>;
    expect(said).toMatchObject({ user_id: "alice", identity: "alice" });
  });
});

describe("missed fires", () => {
  it("after downtime a cron fires once, for the latest missed time, and skips the older ones", async () => {
    // The server's clock is the test's: the cron is created with it six hours behind, then it
    // jumps back to real time, past five or six of the hourly cron's times at once, as if no
    // scheduler had run for that long (behind, not ahead: on Postgres a scheduler whose clock
    // runs ahead of the database's fires nothing early). The scheduler looks every 50 ms.
    let offsetMs = 0;
    const clock = { nowMs: () => Date.now() + offsetMs };
    const dataDir = mkdtempSync(join(tmpdir(), "baton-crons-missed-"));
    const database = SCALE_OUT ? await freshDatabase("crons_missed") : undefined;
    const backend = database === undefined ? {} : { databaseUrl: database.url, redisUrl: REDIS_URL, redisPrefix: `baton-test:${randomUUID()}:` };
    const config = loadConfig({ port: 0, dataDir, configPath: FIXTURES, shutdownGraceMs: 0, cronPollMs: 50, ...backend }, {});
    const logger = createLogger({ level: "warn", format: "json", write: (line) => process.stderr.write(line) });
    const server = await createServer(config, loadProject(config.configPath, {}), logger, clock);
    try {
      const sdk = new Client({ apiUrl: server.url });
      offsetMs = -6 * 3_600_000;
      const cron = await sdk.crons.create("echo", { schedule: "0 * * * *", input: human("hourly"), onRunCompleted: "keep" });
      offsetMs = 0;
      // The hour as of now; the checks below allow for an hour that turns while the test runs.
      const hourOf = (ms: number) => Math.floor(ms / 3_600_000) * 3_600_000;
      const latest = hourOf(clock.nowMs());
      const fired = await until(async () => {
        const threads = await sdk.threads.search({ metadata: { cron_id: cron.cron_id } });
        return threads.length > 0 ? threads : undefined;
      }, "the missed fire");
      const turned = hourOf(clock.nowMs()) !== latest;
      if (!turned) {
        expect(fired).toHaveLength(1);
        expect(fired[0]!.metadata?.cron_scheduled_at).toBe(new Date(latest).toISOString());
        const after = await sdk.crons.search({ metadata: {} }).then((all) => all.find((c) => c.cron_id === cron.cron_id)!);
        expect(after.next_run_date).toBe(new Date(latest + 3_600_000).toISOString());
      }
      // Nothing more fires for the skipped hours: a probe cron due every second fires twice,
      // so the scheduler has looked again since, and found nothing more of the hourly cron.
      const probe = await sdk.crons.create("echo", { schedule: "* * * * * *", input: human("probe"), onRunCompleted: "keep" });
      await until(async () => {
        const threads = await sdk.threads.search({ metadata: { cron_id: probe.cron_id } });
        return threads.length >= 2 ? threads : undefined;
      }, "two fires of the probe cron");
      await sdk.crons.delete(probe.cron_id);
      // Once, or once more for an hour that turned meanwhile: never for the skipped hours.
      const fires = (await sdk.threads.search({ metadata: { cron_id: cron.cron_id } })).map((t) => t.metadata?.cron_scheduled_at as string).sort();
      const [hour, next] = [new Date(latest).toISOString(), new Date(latest + 3_600_000).toISOString()];
      if (hourOf(clock.nowMs()) === latest) expect(fires).toEqual([hour]);
      else expect([[hour, next], [next]]).toContainEqual(fires);
      await sdk.crons.delete(cron.cron_id);
    } finally {
      await server.close(0);
      await database?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
