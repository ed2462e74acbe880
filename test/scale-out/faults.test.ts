/**
 * Fault injection under load (issue 11). Real Baton processes serve a steady
 * load of runs from the official SDK while faults are injected: waves of
 * `pg_terminate_backend` on every connection of the server's database, a
 * Postgres restart (a private server: the shared one is left alone), a
 * private Redis killed and restarted, a worker SIGKILLed mid-run. After each,
 * every run is audited: each accepted run ended exactly once, `success`,
 * with its own answer; none is stuck or duplicated; the second step's work
 * was done once (the graph logs each execution); every failed request was a
 * 503 naming the database, never a hang or another error; and no Baton
 * process died.
 *
 * Scripted and repeatable: run delays and fault timing come from a seeded
 * generator (BATON_FAULT_SEED), faults fire after a number of completed
 * runs, not after a time.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type Cluster, type Member } from "../helpers/cluster.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { killAll, runBaton, type Baton } from "../helpers/process.ts";
import { privatePostgresUnavailable, startPrivatePostgres, startPrivateRedis, type PrivatePostgres, type PrivateRedis } from "../helpers/private-services.ts";
import { human, REDIS_URL, until } from "../helpers/server.ts";
import { migrate, openPool } from "../../src/backends/postgres/index.ts";
import { PostgresRunQueue } from "../../src/backends/postgres/runs.ts";
import { ManualClock, newRun, succeeded } from "../../src/testing/index.ts";

const SEED = Number(process.env.BATON_FAULT_SEED ?? 11);
const GRAPHS = join(import.meta.dirname, "../helpers/fault-graphs/langgraph.json");
const work = mkdtempSync(join(tmpdir(), "baton-faults-"));
const EXECUTIONS = join(work, "executions.log");
/** A request that takes longer than this is a hang. */
const REQUEST_DEADLINE_MS = 40_000;
/** The one kind of failed request a fault may cost: a 503 saying the database is away. */
const DOCUMENTED_FAILURE = /^The database (connection was lost|is unreachable); retry the request\.$/;
// The cluster: short leases, so a killed worker's runs come back within seconds.
const LEASES = { BATON_LEASE_MS: "4000", BATON_LEASE_RENEW_MS: "500", BATON_SWEEP_INTERVAL_MS: "500", BATON_SHUTDOWN_GRACE_MS: "300" };
// The all-in-one process: leases that outlast a Postgres restart on a loaded machine (no lease may expire, so no step runs twice).
const SOLO_LEASES = { ...LEASES, BATON_LEASE_MS: "15000", BATON_LEASE_RENEW_MS: "1000", BATON_SWEEP_INTERVAL_MS: "1000" };

/** mulberry32: a small seeded generator, so a failing sequence can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = seeded(SEED);
const between = (low: number, high: number) => low + Math.floor(random() * (high - low + 1));

// ---------------------------------------------------------------------------
// Processes: every Baton this file starts, and whether its death was ordered.

interface Watched {
  name: string;
  baton: Baton;
  /** Set before the test kills it on purpose. */
  killedOnPurpose: boolean;
}
const watched: Watched[] = [];
let onDeath: (message: string) => void = () => undefined;

function watch(name: string, baton: Baton): Watched {
  const entry: Watched = { name, baton, killedOnPurpose: false };
  watched.push(entry);
  void baton.exited.then((code) => {
    if (entry.killedOnPurpose) return;
    const stderr = baton.output().stderr.split("\n").slice(-15).join("\n");
    onDeath(`Baton process ${name} died (${code}):\n${stderr}`);
  });
  return entry;
}

/** Baton processes that died without being told to. */
const deaths: string[] = [];
onDeath = (message) => deaths.push(message);
/** Rejects as soon as a Baton process dies unbidden, so a test fails at once rather than waiting for runs that cannot come. */
function deathOf(): Promise<never> {
  return new Promise<never>((_, reject) => {
    if (deaths.length > 0) reject(new Error(deaths.join("\n\n")));
    const previous = onDeath;
    onDeath = (message) => {
      previous(message);
      reject(new Error(message));
    };
  });
}

function expectAllAlive(): void {
  expect(deaths).toEqual([]);
  for (const w of watched) {
    if (w.killedOnPurpose) continue;
    expect({ name: w.name, exitCode: w.baton.child.exitCode, signal: w.baton.child.signalCode }).toEqual({ name: w.name, exitCode: null, signal: null });
  }
}

// ---------------------------------------------------------------------------
// Load: lanes of clients, each creating a run on a new thread and joining it.

type Msg = { content: string };
interface Failure {
  request: string;
  status: number | undefined;
  detail: string;
}
interface Attempt {
  threadId: string;
  message: string;
  runId?: string;
  answer?: Msg[];
}

interface Load {
  attempts: Attempt[];
  failures: Failure[];
  /** Resolves once `n` more runs have been answered (rejects if a process dies). */
  completions(n: number): Promise<void>;
  /** Stops starting runs; resolves when every lane's last run is answered. */
  stop(): Promise<void>;
}

function describeFailure(request: string, error: unknown): Failure {
  const status = typeof error === "object" && error !== null && "status" in error && typeof error.status === "number" ? error.status : undefined;
  const text = error instanceof Error ? error.message : String(error);
  let detail = text;
  const body = /^HTTP \d+: (.*)$/s.exec(text)?.[1];
  if (body !== undefined) {
    try {
      detail = String((JSON.parse(body) as { detail?: unknown }).detail);
    } catch {
      detail = body;
    }
  }
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) detail = `no answer within ${REQUEST_DEADLINE_MS} ms (hang)`;
  return { request, status, detail };
}

function startLoad(client: Client, label: string, options: { lanes: number; delayMs: [number, number] }): Load {
  const attempts: Attempt[] = [];
  const failures: Failure[] = [];
  let stopped = false;
  let answered = 0;
  const waiters: { at: number; resolve: () => void }[] = [];
  const answeredOne = () => {
    answered += 1;
    for (const waiter of waiters.filter((w) => answered >= w.at)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  };
  /** After a failed request a client backs off briefly, as a real one would (a down database fails requests at once). */
  const pause = () => new Promise((resolve) => setTimeout(resolve, 100));

  const lane = async (index: number) => {
    for (let i = 0; !stopped; i++) {
      const attempt: Attempt = {
        threadId: randomUUID(),
        message: `${label}-${index}-${i}-${randomUUID().slice(0, 8)} ms:${between(...options.delayMs)}`,
      };
      attempts.push(attempt);
      try {
        const run = await client.runs.create(attempt.threadId, "relay", {
          input: human(attempt.message),
          ifNotExists: "create",
          signal: AbortSignal.timeout(REQUEST_DEADLINE_MS),
        });
        attempt.runId = run.run_id;
      } catch (error) {
        failures.push(describeFailure("create", error));
        await pause();
        continue;
      }
      // Join until answered, as a client would retry a 503.
      while (attempt.answer === undefined) {
        try {
          const out = (await client.runs.join(attempt.threadId, attempt.runId, { signal: AbortSignal.timeout(REQUEST_DEADLINE_MS) })) as { messages?: Msg[] };
          attempt.answer = out.messages ?? [];
        } catch (error) {
          const failure = describeFailure("join", error);
          failures.push(failure);
          if (failure.status !== 503) break;
          await pause();
        }
      }
      answeredOne();
    }
  };
  const lanes = Promise.all(Array.from({ length: options.lanes }, (_, i) => lane(i)));
  return {
    attempts,
    failures,
    completions(n) {
      const at = answered + n;
      return Promise.race([new Promise<void>((resolve) => waiters.push({ at, resolve })), deathOf()]);
    },
    async stop() {
      stopped = true;
      await Promise.race([lanes, deathOf()]);
    },
  };
}

const expectedMessages = (message: string) => [message, `first: ${message}`, `echo: ${message}`];

function executions(message: string): number {
  let text: string;
  try {
    text = readFileSync(EXECUTIONS, "utf8");
  } catch {
    return 0;
  }
  return text.split("\n").filter((line) => line === message).length;
}

/** Runs `task` over `items`, `width` at a time. */
async function eachLimited<T>(items: T[], width: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
}

/**
 * The audit after a fault. `oncePerRun`: the second step's work was done
 * exactly once per run (false where a process was killed mid-step: that
 * step is done again by the next attempt, which is the contract).
 */
async function audit(client: Client, load: Load, options: { oncePerRun: boolean }): Promise<void> {
  // Every failed request was a 503 saying the database was away.
  const unexpected = load.failures.filter((f) => f.status !== 503 || !DOCUMENTED_FAILURE.test(f.detail));
  expect(unexpected).toEqual([]);
  const problems: string[] = [];
  await eachLimited(load.attempts, 6, async (attempt) => {
    const problem = (what: string) => problems.push(`${attempt.message} (run ${attempt.runId ?? "not accepted"}): ${what}`);
    const runs = await client.runs.list(attempt.threadId).catch((error: unknown) => {
      if (describeFailure("list", error).status === 404) return [];
      throw error;
    });
    if (attempt.runId === undefined) {
      // Refused create: either nothing was created, or a run that must end like any other.
      if (runs.length === 0) {
        if (executions(attempt.message) !== 0) problem("a refused run was executed");
        return;
      }
      attempt.runId = runs[0]!.run_id;
    }
    if (runs.length !== 1 || runs[0]!.run_id !== attempt.runId) problem(`the thread holds runs ${JSON.stringify(runs.map((r) => r.run_id))}`);
    const run = await client.runs.get(attempt.threadId, attempt.runId);
    if (run.status !== "success") problem(`status ${run.status}`);
    const answer = attempt.answer ?? (((await client.runs.join(attempt.threadId, attempt.runId)) as { messages?: Msg[] }).messages ?? []);
    if (JSON.stringify(answer.map((m) => m.content)) !== JSON.stringify(expectedMessages(attempt.message))) {
      problem(`answered ${JSON.stringify(answer.map((m) => m.content))}`);
    }
    const state = (await client.threads.getState(attempt.threadId)).values as { messages?: Msg[] };
    if (JSON.stringify((state.messages ?? []).map((m) => m.content)) !== JSON.stringify(expectedMessages(attempt.message))) {
      problem(`thread state ${JSON.stringify((state.messages ?? []).map((m) => m.content))}`);
    }
    const done = executions(attempt.message);
    if (options.oncePerRun ? done !== 1 : done < 1) problem(`second step executed ${done} time(s)`);
  });
  expect(problems).toEqual([]);
  expectAllAlive();
}

async function terminateBackends(url: string): Promise<number> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ n: number }>(
      "SELECT COUNT(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    );
    return rows[0]!.n;
  } finally {
    await admin.end();
  }
}

/** Advisory lock key of the mode lock (src/backends/postgres/database.ts). */
const MODE_LOCK = 0x626174_6f6e2d;

/** Resolves once `processes` connections hold the mode lock on `url`'s database again (it goes with a killed connection). */
async function modeLockHeldBy(url: string, processes: number): Promise<void> {
  await until(async () => {
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ n: number }>(
        `SELECT COUNT(*)::int AS n FROM pg_locks
          WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND ((classid::bigint << 32) | objid::bigint) = $1`,
        [MODE_LOCK],
      );
      return rows[0]!.n === processes ? true : undefined;
    } finally {
      await admin.end();
    }
  }, `the mode lock held by ${processes} process(es)`);
}

// ---------------------------------------------------------------------------

const noPrivatePostgres = privatePostgresUnavailable();
let privatePostgres: PrivatePostgres | undefined;
let redis: PrivateRedis;
/** The all-in-one process's database: on the private Postgres when there is one. */
let soloDatabase: TestDatabase;
let solo: { client: Client; process: Watched };
let cluster: Cluster;
let api: Member;

beforeAll(async () => {
  const [privateServer, started] = await Promise.all([
    noPrivatePostgres === undefined ? startPrivatePostgres() : Promise.resolve(undefined),
    startPrivateRedis(),
  ]);
  privatePostgres = privateServer;
  redis = started;
  if (privatePostgres !== undefined) {
    const admin = new pg.Client({ connectionString: privatePostgres.url });
    await admin.connect();
    await admin.query("CREATE DATABASE baton_faults");
    await admin.end();
    const url = new URL(privatePostgres.url);
    url.pathname = "/baton_faults";
    soloDatabase = { url: url.toString(), drop: async () => undefined };
  } else {
    soloDatabase = await freshDatabase("faults_solo");
  }
  const common = { ...LEASES, BATON_FAULT_LOG: EXECUTIONS };
  const soloBaton = runBaton(["serve", "--config", GRAPHS, "--port", "0"], {
    env: { ...common, ...SOLO_LEASES, DATABASE_URL: soloDatabase.url, REDIS_URL, BATON_REDIS_PREFIX: `baton-test:${randomUUID()}:`, BATON_LOG_LEVEL: "info" },
  });
  cluster = await startCluster("faults", { ...common, REDIS_URL: redis.url }, GRAPHS);
  const [soloUrl, members] = await Promise.all([soloBaton.url, Promise.all([cluster.start("api"), cluster.start("worker"), cluster.start("worker")])]);
  solo = { client: new Client({ apiUrl: soloUrl, callerOptions: { maxRetries: 0 } }), process: watch("all-in-one", soloBaton) };
  api = members[0];
  for (const member of members) watch(`${member.role} ${member.url}`, member.baton);
}, 90_000);

afterAll(async () => {
  for (const w of watched) w.killedOnPurpose = true;
  await cluster?.close();
  killAll();
  await soloDatabase?.drop();
  await privatePostgres?.destroy();
  await redis?.kill();
  rmSync(work, { recursive: true, force: true });
}, 30_000);

describe(`fault injection under load (seed ${SEED})`, () => {
  describe("one all-in-one process (role all) on Postgres and Redis", () => {
    it("survives waves of pg_terminate_backend on all its connections; requests cost at most a 503, runs end once", async () => {
      const load = startLoad(solo.client, "solo-kill", { lanes: 6, delayMs: [0, 150] });
      for (let wave = 0; wave < 3; wave++) {
        await load.completions(between(4, 10));
        expect(await terminateBackends(soloDatabase.url)).toBeGreaterThan(0);
      }
      // Runs keep flowing after the last wave.
      await load.completions(12);
      await load.stop();
      await audit(solo.client, load, { oncePerRun: true });
      await modeLockHeldBy(soloDatabase.url, 1);
    }, 120_000);

    it.skipIf(noPrivatePostgres !== undefined)(`survives a Postgres restart (pg_ctl -m immediate)${noPrivatePostgres ? `; skipped: ${noPrivatePostgres}` : ""}`, async () => {
      const load = startLoad(solo.client, "solo-restart", { lanes: 6, delayMs: [0, 300] });
      await load.completions(between(5, 10));
      await privatePostgres!.stopImmediate();
      await privatePostgres!.start();
      await load.completions(12);
      await load.stop();
      await audit(solo.client, load, { oncePerRun: true });
      await modeLockHeldBy(soloDatabase.url, 1);
    }, 120_000);
  });

  describe("1 API and 2 worker processes on Postgres and a private Redis", () => {
    it("survives waves of pg_terminate_backend on every process's connections (pools, lease threads, mode locks)", async () => {
      const load = startLoad(api.client, "cluster-kill", { lanes: 6, delayMs: [0, 150] });
      for (let wave = 0; wave < 3; wave++) {
        await load.completions(between(4, 10));
        expect(await terminateBackends(cluster.database.url)).toBeGreaterThan(0);
      }
      await load.completions(12);
      await load.stop();
      await audit(api.client, load, { oncePerRun: true });
      await modeLockHeldBy(cluster.database.url, 3);
    }, 120_000);

    it("survives Redis killed and restarted empty", async () => {
      const load = startLoad(api.client, "cluster-redis", { lanes: 6, delayMs: [0, 300] });
      await load.completions(between(5, 10));
      await redis.kill();
      // Readiness says so, naming Redis, while it is away; and recovers once it is back.
      const ready = async () => {
        const response = await fetch(`${api.url}/ready`);
        return { status: response.status, body: (await response.json()) as { checks: Record<string, string> } };
      };
      const away = await until(async () => {
        const answer = await ready();
        return answer.status === 503 ? answer : undefined;
      }, "/ready to answer 503 while Redis is away");
      expect(away.body.checks.redis).toMatch(/Redis is not connected/);
      expect(away.body.checks.database).toBe("ok");
      await redis.start();
      await until(async () => ((await ready()).status === 200 ? true : undefined), "/ready to answer 200 once Redis is back", 30_000);
      await load.completions(12);
      await load.stop();
      await audit(api.client, load, { oncePerRun: true });
    }, 120_000);

    it("survives a worker SIGKILLed mid-run: its runs are recovered by the other worker, once", async () => {
      const load = startLoad(api.client, "cluster-sigkill", { lanes: 6, delayMs: [50, 400] });
      await load.completions(between(3, 6));
      // A run that is surely in flight when its worker dies: it holds its second step for 3 s.
      const victimRun: Attempt = { threadId: randomUUID(), message: `cluster-sigkill-victim-${randomUUID().slice(0, 8)} ms:3000` };
      load.attempts.push(victimRun);
      victimRun.runId = (await api.client.runs.create(victimRun.threadId, "relay", { input: human(victimRun.message), ifNotExists: "create" })).run_id;
      const worker = await cluster.runner(victimRun.runId, cluster.members.filter((m) => m.role === "worker"));
      const victim = watched.find((w) => w.baton === worker.baton)!;
      victim.killedOnPurpose = true;
      await worker.stop("SIGKILL");
      await load.completions(12);
      victimRun.answer = ((await api.client.runs.join(victimRun.threadId, victimRun.runId, { signal: AbortSignal.timeout(REQUEST_DEADLINE_MS) })) as { messages: Msg[] }).messages;
      await load.stop();
      await audit(api.client, load, { oncePerRun: false });
      // The killed worker's run was taken over by the other worker.
      const survivor = cluster.members.find((m) => m.role === "worker" && m !== worker)!;
      expect(survivor.claimed(victimRun.runId)).toBe(true);
    }, 120_000);
  });
});

/**
 * The narrowest connection loss: Postgres committed, and the connection died
 * before the answer arrived. Injected into a real pool (the statement runs,
 * then its answer is replaced by the driver's error), so it happens every
 * time rather than once in thousands of terminate waves.
 */
describe("a connection lost after Postgres committed, before the answer", () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let queue: PostgresRunQueue;
  const lost = () => new Error("Connection terminated unexpectedly");

  beforeAll(async () => {
    database = await freshDatabase("faults_replies");
    pool = openPool({ url: database.url, max: 4 });
    await migrate(pool);
    queue = new PostgresRunQueue(pool, new ManualClock(Date.now()), database.url);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  it("a claim whose answer was lost is handed back before the worker claims again, so the run is not stuck", async () => {
    const threadId = randomUUID();
    const runId = randomUUID();
    await queue.create(newRun(threadId, runId));
    // eslint-disable-next-line @typescript-eslint/unbound-method -- kept to be restored; always called on its own object
    const query = pool.query;
    pool.query = (async (...args: Parameters<typeof query>) => {
      const result = await (query as (...a: unknown[]) => Promise<unknown>).apply(pool, args);
      if (String(args[0]).includes("baton_claim")) throw lost();
      return result;
    }) as typeof query;
    try {
      await expect(queue.claim("worker-a", 60_000)).rejects.toThrow();
    } finally {
      pool.query = query;
    }
    // The claim did commit: the run is leased to a worker that never heard of it.
    expect((await queue.get(runId))?.status).toBe("running");
    const again = await queue.claim("worker-a", 60_000);
    expect(again?.run_id).toBe(runId);
    expect(again?.status).toBe("running");
  });

  it("an outcome whose COMMIT answer was lost is reported recorded, not fenced or failed", async () => {
    const threadId = randomUUID();
    const runId = randomUUID();
    await queue.create(newRun(threadId, runId));
    const run = (await queue.claim("worker-b", 60_000))!;
    expect(run.run_id).toBe(runId);
    // eslint-disable-next-line @typescript-eslint/unbound-method -- kept to be restored; always called on its own object
    const connect = pool.connect;
    let armed = true;
    pool.connect = async () => {
      const client = await (connect as () => Promise<pg.PoolClient>).call(pool);
      // eslint-disable-next-line @typescript-eslint/unbound-method -- kept to be restored; always called on its own object
      const clientQuery = client.query;
      client.query = (async (...args: unknown[]) => {
        const result = await (clientQuery as (...a: unknown[]) => Promise<unknown>).apply(client, args);
        if (armed && args[0] === "COMMIT") {
          armed = false;
          throw lost();
        }
        return result;
      }) as typeof client.query;
      // eslint-disable-next-line @typescript-eslint/unbound-method -- kept to be restored; always called on its own object
      const release = client.release;
      client.release = ((error?: Error | boolean) => {
        client.query = clientQuery;
        release.call(client, error);
      });
      return client;
    };
    try {
      expect(await queue.finish(runId, { owner: "worker-b", attempt: run.attempt }, succeeded)).toBe("recorded");
    } finally {
      pool.connect = connect;
    }
    expect(armed).toBe(false);
    expect((await queue.get(runId))?.status).toBe("success");
  });
});
