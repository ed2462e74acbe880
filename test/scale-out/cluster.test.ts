/**
 * Scale-out across real processes: two API and two worker processes on one
 * Postgres database and one Redis, killed and restarted the way production
 * loses them. Every answer and every final state is audited.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type Cluster, type Member } from "../helpers/cluster.ts";
import { scrape } from "../helpers/metrics.ts";
import { killAll, runBaton } from "../helpers/process.ts";
import { human, until } from "../helpers/server.ts";

type Msg = { type: string; content: string };
const markers = mkdtempSync(join(tmpdir(), "baton-cluster-"));
const marker = (name: string) => join(markers, `${name}-${crypto.randomUUID()}`);

let cluster: Cluster;
let apiA: Member;
let apiB: Member;
let migrateOutput = "";

beforeAll(async () => {
  // Short leases so a dead worker's run is requeued in about 2.5 s.
  cluster = await startCluster("cluster", {
    BATON_LEASE_MS: "2000",
    BATON_LEASE_RENEW_MS: "500",
    BATON_SWEEP_INTERVAL_MS: "500",
    BATON_SHUTDOWN_GRACE_MS: "300",
  });
  const migrate = runBaton(["migrate"], { env: cluster.env });
  expect(await migrate.exited).toBe(0);
  migrateOutput = migrate.output().stdout;
  [apiA, apiB] = await Promise.all([cluster.start("api"), cluster.start("api"), cluster.start("worker"), cluster.start("worker")]);
}, 60_000);

afterAll(async () => {
  await cluster.close();
  killAll();
  rmSync(markers, { recursive: true, force: true });
});

const workers = () => cluster.members.filter((m) => m.role === "worker" && m.baton.child.exitCode === null && m.baton.child.signalCode === null);

/** A two-step run that waits for `file` in its second step; resolves once its first step is durable. */
async function startTwoStep(api: Member, file: string, options: { streamResumable?: boolean } = {}) {
  const thread = await api.client.threads.create();
  const run = await api.client.runs.create(thread.thread_id, "two_step", { input: human(`go file:${file}`), streamMode: ["updates"], ...options });
  await until(async () => {
    const history = await api.client.threads.getHistory(thread.thread_id, { limit: 20 });
    return history.some((h) => JSON.stringify(h.values).includes("first: ")) ? true : undefined;
  }, "the first step's checkpoint");
  return { thread, run };
}

const twoStepMessages = (file: string) => [`go file:${file}`, `first: go file:${file}`, "second: done"];

describe("scale-out across processes", () => {
  it("baton migrate brings a new database up to date", () => {
    expect(migrateOutput).toMatch(/applied migration\(s\) 1/);
  });

  it("an API process serves no runs of its own, and a worker serves no API", async () => {
    const worker = workers()[0]!;
    expect(await (await fetch(`${worker.url}/ok`)).json()).toEqual({ ok: true, role: "worker" });
    expect((await fetch(`${worker.url}/threads`, { method: "POST" })).status).toBe(404);
  });

  describe.each(["enqueue", "reject", "interrupt", "rollback"] as const)("20 requests on one thread through both API processes, %s", (strategy) => {
    it("answers every request with its own run and leaves a consistent state (C1 to C4)", async () => {
      const thread = await apiA.client.threads.create();
      const texts = Array.from({ length: 20 }, (_, i) => `${strategy}-${i}`);
      const outcomes = await Promise.all(
        texts.map(async (text, i) => {
          const api = i % 2 === 0 ? apiA : apiB;
          try {
            const out = (await api.client.runs.wait(thread.thread_id, "echo", { input: human(text), multitaskStrategy: strategy })) as { messages: Msg[] };
            return { kind: "ok" as const, text, messages: out.messages };
          } catch (error) {
            const message = (error as Error).message;
            if (/HTTP 409/.test(message)) return { kind: "rejected" as const, text };
            if (/RunInterrupted|RunRolledBack/.test(message)) return { kind: "stopped" as const, text, message };
            throw error;
          }
        }),
      );
      const ok = outcomes.filter((o) => o.kind === "ok");
      expect(ok.length).toBeGreaterThanOrEqual(1);
      for (const o of ok) {
        // Never empty, never another request's answer.
        expect(o.messages.filter((m) => m.type === "human").at(-1)!.content).toBe(o.text);
        expect(o.messages.at(-1)).toMatchObject({ type: "ai", content: `echo: ${o.text}` });
      }
      const state = (await apiB.client.threads.getState(thread.thread_id)).values as { messages?: Msg[] };
      const contents = (state.messages ?? []).map((m) => m.content);
      expect(new Set(contents).size).toBe(contents.length);
      const humans = contents.filter((c) => !c.startsWith("echo: ")).sort();
      if (strategy === "enqueue") expect(humans).toEqual([...texts].sort());
      if (strategy === "reject" || strategy === "rollback") expect(humans).toEqual(ok.map((o) => o.text).sort());
      for (const o of ok) expect(contents).toContain(`echo: ${o.text}`);
      if (strategy === "reject") expect(outcomes.every((o) => o.kind !== "stopped")).toBe(true);
      if (strategy === "enqueue") expect(ok).toHaveLength(20);
      const runs = await apiA.client.runs.list(thread.thread_id, { limit: 100 });
      expect(runs.every((r) => r.status !== "pending" && r.status !== "running")).toBe(true);
      expect((await apiA.client.threads.get(thread.thread_id)).status).toBe("idle");
    });
  });

  it("100 concurrent stateless runs through both API processes each answer their own output (C4)", async () => {
    // Stateless runs delete their thread when they end: the answer must come
    // from the run itself even when it finished before its waiter looked.
    const texts = Array.from({ length: 100 }, (_, i) => `stateless-${i}`);
    const answers = await Promise.all(
      texts.map(async (text, i) => {
        const api = i % 2 === 0 ? apiA : apiB;
        return (await api.client.runs.wait(null, "echo", { input: human(text) })) as { messages?: Msg[] };
      }),
    );
    answers.forEach((answer, i) => expect(answer.messages?.map((m) => m.content)).toEqual([texts[i], `echo: ${texts[i]}`]));
  });

  it("a stream opened on API A resumes through API B with Last-Event-ID after A is killed (C8)", async () => {
    const file = marker("stream");
    const { thread, run } = await startTwoStep(apiA, file, { streamResumable: true });
    let lastEventId: string | undefined;
    const seen: string[] = [];
    for await (const part of apiA.client.runs.joinStream(thread.thread_id, run.run_id)) {
      lastEventId = (part as { id?: string }).id;
      seen.push(part.event);
      if (part.event === "updates" && "first" in (part.data as object)) break;
    }
    expect(await apiA.stop("SIGKILL")).toBe("SIGKILL");
    writeFileSync(file, "go");
    const rest: { event: string; data: unknown }[] = [];
    for await (const part of apiB.client.runs.joinStream(thread.thread_id, run.run_id, { lastEventId })) rest.push(part);
    expect(seen).toEqual(["metadata", "updates"]);
    expect(rest.map((p) => p.event)).toEqual(["updates"]);
    expect(Object.keys(rest[0]!.data as object)).toEqual(["second"]);
    apiA = await cluster.start("api");
  });

  // The second step waits for a file nobody writes: only the cancel reaching the worker ends it.
  // How fast it arrives is measured by the benchmark, not asserted here (it flaked under load).
  it("a cancel sent to API A stops a run executing on a worker (C7)", async () => {
    const { thread, run } = await startTwoStep(apiA, marker("cancel"));
    await apiA.client.runs.cancel(thread.thread_id, run.run_id, true);
    expect((await apiB.client.runs.get(thread.thread_id, run.run_id)).status).toBe("interrupted");
    expect((await apiB.client.threads.get(thread.thread_id)).status).toBe("idle");
  });

  it("a node that blocks its worker's event loop past the lease is not re-dispatched while that process lives (C9)", async () => {
    // Lease 2 s, swept every 0.5 s by the other worker; the node blocks 5 s.
    const thread = await apiA.client.threads.create();
    const run = await apiA.client.runs.create(thread.thread_id, "blocker", { input: human("block:5000"), streamMode: ["updates"] });
    const out = (await apiB.client.runs.join(thread.thread_id, run.run_id)) as { messages: Msg[] };
    expect(out.messages.map((m) => m.content)).toEqual(["block:5000", "unblocked after 5000 ms"]);
    expect(workers().filter((w) => w.claimed(run.run_id))).toHaveLength(1);
    expect(cluster.members.some((m) => m.baton.output().stderr.includes(`"run:requeued","run_id":"${run.run_id}"`))).toBe(false);
  });

  it("SIGKILL of the worker mid-run: the other worker finishes it exactly once (C3)", async () => {
    const file = marker("sigkill");
    const { thread, run } = await startTwoStep(apiA, file);
    const victim = await cluster.runner(run.run_id);
    const survivors = workers().filter((w) => w !== victim);
    const counted = async () => {
      const scrapes = await Promise.all(survivors.map((w) => scrape(`${w.url}/metrics`)));
      const sum = (name: string, labels?: Record<string, string>) => scrapes.reduce((total, s) => total + s.value(name, labels), 0);
      return {
        expiries: sum("baton_lease_expiries_total"),
        recovered: sum("baton_runs_recovered_total"),
        retries: sum("baton_run_retries_total", { graph_id: "two_step" }),
      };
    };
    const before = await counted();
    expect(await victim.stop("SIGKILL")).toBe("SIGKILL");
    writeFileSync(file, "go");
    const out = (await apiB.client.runs.join(thread.thread_id, run.run_id)) as { messages: Msg[] };
    expect(out.messages.map((m) => m.content)).toEqual(twoStepMessages(file));
    expect((await apiA.client.runs.get(thread.thread_id, run.run_id)).status).toBe("success");
    // The survivor's /metrics tells what happened: one lease expired and swept, the run requeued, its second attempt claimed.
    const after = await counted();
    expect({ expiries: after.expiries - before.expiries, recovered: after.recovered - before.recovered, retries: after.retries - before.retries }).toEqual({
      expiries: 1,
      recovered: 1,
      retries: 1,
    });
    const state = (await apiA.client.threads.getState(thread.thread_id)).values as { messages: Msg[] };
    expect(state.messages.map((m) => m.content)).toEqual(twoStepMessages(file));
    expect(workers().filter((w) => w.claimed(run.run_id))).toHaveLength(1);
    await cluster.start("worker");
  });

  it("SIGTERM of the worker mid-run: the run is handed back and finished elsewhere", async () => {
    const file = marker("sigterm");
    const { thread, run } = await startTwoStep(apiA, file);
    const victim = await cluster.runner(run.run_id);
    expect(await victim.stop("SIGTERM")).toBe(0);
    expect(victim.baton.output().stderr).toMatch(new RegExp(`"msg":"run:handed-back","run_id":"${run.run_id}"`));
    writeFileSync(file, "go");
    const out = (await apiB.client.runs.join(thread.thread_id, run.run_id)) as { messages: Msg[] };
    expect(out.messages.map((m) => m.content)).toEqual(twoStepMessages(file));
    expect(workers().filter((w) => w.claimed(run.run_id))).toHaveLength(1);
    await cluster.start("worker");
  });

  it("Postgres connections dropped: every process's pool recovers", async () => {
    const admin = new pg.Client({ connectionString: cluster.database.url });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ n: number }>(
        "SELECT COUNT(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
      );
      expect(rows[0]!.n).toBeGreaterThan(0);
    } finally {
      await admin.end();
    }
    const thread = await until(async () => apiA.client.threads.create().catch(() => undefined), "a request after the drop");
    for (const api of [apiA, apiB, apiA, apiB]) {
      const out = (await api.client.runs.wait(thread.thread_id, "echo", { input: human(`after drop ${api.url}`) })) as { messages: Msg[] };
      expect(out.messages.at(-1)!.content).toBe(`echo: after drop ${api.url}`);
    }
  });
});
