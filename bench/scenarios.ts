/**
 * Benchmark scenarios. Each runs against a server through the official SDK
 * (or, for the in-process limit, against the graph itself), is bounded in
 * time, and returns plain figures.
 */
import { HumanMessage } from "@langchain/core/messages";
import { MemorySaver } from "@langchain/langgraph";
import { Client } from "@langchain/langgraph-sdk";
import { randomUUID } from "node:crypto";
import pg from "pg";
import { createPostgresBackend } from "../src/backends/postgres/index.ts";
import { systemClock } from "../src/core/clock.ts";
import { newRun, succeeded } from "../src/testing/fixtures.ts";
import { echo, slowEcho } from "./graphs/graphs.ts";

export const percentile = (sorted: number[], q: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

export interface LatencyFigures {
  runs: number;
  errors: number;
  runs_per_s: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
}

function figures(latencies: number[], errors: number, wallMs: number): LatencyFigures {
  latencies.sort((a, b) => a - b);
  return {
    runs: latencies.length,
    errors,
    runs_per_s: round((latencies.length / wallMs) * 1000),
    p50_ms: round(percentile(latencies, 0.5)),
    p95_ms: round(percentile(latencies, 0.95)),
    p99_ms: round(percentile(latencies, 0.99)),
  };
}

const human = (content: string) => ({ messages: [{ role: "user", content }] });

/** Runs `work` again when it throws, up to `tries` times in all. */
async function retried<T>(work: () => Promise<T>, tries = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= tries) throw error;
    }
  }
}

/** `clients` loops, each on its own thread, calling `runs/wait` on echo for `durationMs`. */
export async function throughput(url: string, clients: number, durationMs: number): Promise<LatencyFigures> {
  const client = new Client({ apiUrl: url, callerOptions: { maxRetries: 0 } });
  // Set-up may retry (the SDK does not retry a failed connection): after the
  // harness's loop was starved by a paired in-process case, a pooled
  // connection the server has closed can fail one request.
  const threads = await Promise.all(Array.from({ length: clients }, () => retried(() => client.threads.create())));
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    threads.map(async (thread, c) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const t0 = performance.now();
        try {
          await client.runs.wait(thread.thread_id, "echo", { input: human(`c${c}-${i}`) });
          latencies.push(performance.now() - t0);
        } catch {
          errors += 1;
        }
      }
    }),
  );
  return figures(latencies, errors, performance.now() - started);
}

/** The same loops with the graph invoked in process on an in-memory saver. */
export async function throughputInProcess(clients: number, durationMs: number): Promise<LatencyFigures> {
  const graph = echo.withConfig({});
  (graph as unknown as { checkpointer: MemorySaver }).checkpointer = new MemorySaver();
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const t0 = performance.now();
        await graph.invoke({ messages: [new HumanMessage(`c${c}-${i}`)] }, { configurable: { thread_id: `t${c}` } });
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return figures(latencies, 0, performance.now() - started);
}

export interface BurstAudit {
  strategy: string;
  requests: number;
  statuses: Record<string, number>;
  empty: number;
  foreign: number;
  lost: number;
  duplicated: number;
  wall_ms: number;
}

type Msg = { type?: string; content?: unknown };

/**
 * `n` concurrent `runs/wait` on one thread with one strategy; audits every
 * answer (empty, foreign) and the final state (lost, duplicated).
 */
export async function sameThreadBurst(url: string, strategy: "reject" | "enqueue" | "interrupt" | "rollback", n: number, timeoutMs: number): Promise<BurstAudit> {
  const client = new Client({ apiUrl: url, callerOptions: { maxRetries: 0 } });
  const thread = await client.threads.create();
  const statuses: Record<string, number> = {};
  const audit = { empty: 0, foreign: 0, lost: 0, duplicated: 0 };
  const accepted: string[] = [];
  const started = performance.now();
  const signal = AbortSignal.timeout(timeoutMs);
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const text = `burst-${strategy}-${i}`;
      const response = await fetch(`${url}/threads/${thread.thread_id}/runs/wait`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ assistant_id: "echo", input: human(text), multitask_strategy: strategy }),
        signal,
      }).catch(() => null);
      // A body cut off by the case's time limit is a timeout, not an empty
      // answer; an unreadable body from the server itself counts as empty.
      const body =
        response === null || !response.ok
          ? null
          : ((await response.json().catch(() => (signal.aborted ? undefined : null))) as { messages?: Msg[]; __error__?: unknown } | null | undefined);
      const status = response === null || body === undefined ? "timeout" : String(response.status);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (response === null || !response.ok || body === undefined) return;
      if (body?.__error__ !== undefined) return; // the run says it was superseded: a legitimate answer
      const messages = body?.messages ?? [];
      if (messages.length === 0) {
        audit.empty += 1;
        return;
      }
      const humans = messages.filter((m) => m.type === "human");
      if (humans.at(-1)?.content !== text) {
        audit.foreign += 1;
        return;
      }
      accepted.push(text);
    }),
  );
  const wallMs = performance.now() - started;
  const state = await client.threads.getState(thread.thread_id).catch(() => null);
  const contents = ((state?.values as { messages?: Msg[] } | undefined)?.messages ?? []).map((m) => String(m.content));
  const counts = new Map<string, number>();
  for (const c of contents) counts.set(c, (counts.get(c) ?? 0) + 1);
  audit.duplicated = [...counts.values()].filter((v) => v > 1).length;
  audit.lost = accepted.filter((text) => !counts.has(text)).length;
  return { strategy, requests: n, statuses, ...audit, wall_ms: round(wallMs, 0) };
}

/**
 * How long a cancel takes to land: `n` times, one after the other, a run of
 * `sleep` on its own thread is started and, once the server says it is
 * running, cancelled with `wait=true`; the latency is that call's, until
 * the server answers that the run is final. A run that ended otherwise
 * than `interrupted`, or a call that failed, is an error.
 */
export async function cancelLatency(url: string, n: number, timeoutMs: number): Promise<LatencyFigures> {
  const client = new Client({ apiUrl: url, callerOptions: { maxRetries: 0 } });
  const deadline = Date.now() + timeoutMs;
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  for (let i = 0; i < n && Date.now() < deadline; i++) {
    try {
      const thread = await client.threads.create();
      const run = await client.runs.create(thread.thread_id, "sleep", { input: human("zzz") });
      while ((await client.runs.get(thread.thread_id, run.run_id)).status === "pending") {
        if (Date.now() > deadline) throw new Error("never started");
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const asked = performance.now();
      await client.runs.cancel(thread.thread_id, run.run_id, true);
      const took = performance.now() - asked;
      if ((await client.runs.get(thread.thread_id, run.run_id)).status === "interrupted") latencies.push(took);
      else errors += 1;
    } catch {
      errors += 1;
    }
  }
  return figures(latencies, errors, performance.now() - started);
}

/** `n` concurrent stateless runs of `sleep` (2 s each): wall time until all answered. */
export async function longWait(url: string, n: number, timeoutMs: number): Promise<{ runs: number; ok: number; wall_ms: number }> {
  const signal = AbortSignal.timeout(timeoutMs);
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: n }, () =>
      fetch(`${url}/runs/wait`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ assistant_id: "sleep", input: human("zzz") }),
        signal,
      })
        .then(async (r) => r.ok && !JSON.stringify(await r.json()).includes("__error__"))
        .catch(() => false),
    ),
  );
  return { runs: n, ok: results.filter(Boolean).length, wall_ms: round(performance.now() - started, 0) };
}

export interface StreamFigures {
  streams: number;
  errors: number;
  first_token_p50_ms: number;
  first_token_p95_ms: number;
  total_p50_ms: number;
  total_p95_ms: number;
}

function streamFigures(first: number[], total: number[], errors: number): StreamFigures {
  first.sort((a, b) => a - b);
  total.sort((a, b) => a - b);
  return {
    streams: total.length,
    errors,
    first_token_p50_ms: round(percentile(first, 0.5)),
    first_token_p95_ms: round(percentile(first, 0.95)),
    total_p50_ms: round(percentile(total, 0.5)),
    total_p95_ms: round(percentile(total, 0.95)),
  };
}

/** Streams of slow-echo in messages-tuple mode: time to the first token and to the end. */
export async function streams(url: string, count: number, concurrent: boolean): Promise<StreamFigures> {
  const client = new Client({ apiUrl: url, callerOptions: { maxRetries: 0 } });
  const first: number[] = [];
  const total: number[] = [];
  let errors = 0;
  const one = async () => {
    const t0 = performance.now();
    let gotFirst = false;
    try {
      for await (const part of client.runs.stream(null, "slow-echo", { input: human("go"), streamMode: "messages-tuple" })) {
        if (!gotFirst && part.event === "messages") {
          gotFirst = true;
          first.push(performance.now() - t0);
        }
        if (part.event === "error") errors += 1;
      }
      total.push(performance.now() - t0);
    } catch {
      errors += 1;
    }
  };
  if (concurrent) await Promise.all(Array.from({ length: count }, one));
  else for (let i = 0; i < count; i++) await one();
  return streamFigures(first, total, errors);
}

export async function streamsInProcess(count: number, concurrent: boolean): Promise<StreamFigures> {
  const graph = slowEcho.withConfig({});
  (graph as unknown as { checkpointer: MemorySaver }).checkpointer = new MemorySaver();
  const first: number[] = [];
  const total: number[] = [];
  const one = async (i: number) => {
    const t0 = performance.now();
    let gotFirst = false;
    for await (const _chunk of await graph.stream({ messages: [new HumanMessage("go")] }, { configurable: { thread_id: `s${i}` }, streamMode: "messages" })) {
      if (!gotFirst) {
        gotFirst = true;
        first.push(performance.now() - t0);
      }
    }
    total.push(performance.now() - t0);
  };
  if (concurrent) await Promise.all(Array.from({ length: count }, (_, i) => one(i)));
  else for (let i = 0; i < count; i++) await one(i);
  return streamFigures(first, total, 0);
}

/** Creates `threads` threads with one echo run each, `parallel` at a time. */
export async function fillThreads(url: string, threads: number, parallel: number, timeoutMs: number): Promise<{ threads: number; errors: number }> {
  const client = new Client({ apiUrl: url, callerOptions: { maxRetries: 0 } });
  const deadline = performance.now() + timeoutMs;
  let next = 0;
  let done = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < threads && performance.now() < deadline) {
        const i = next++;
        try {
          await client.runs.wait(null, "echo", { input: human(`m${i}`), onCompletion: "keep" } as never);
          done += 1;
        } catch {
          errors += 1;
        }
      }
    }),
  );
  return { threads: done, errors };
}

/**
 * Claim latency on the Postgres queue: `pending` runs on as many threads,
 * claimed and finished by `claimers` concurrent workers (each its own
 * pooled connection), as worker processes do. Times every claim statement.
 */
export async function claimLatency(databaseUrl: string, pending: number, claimers: number): Promise<LatencyFigures & { pending: number; claimers: number }> {
  const backend = await createPostgresBackend({ url: databaseUrl, poolSize: claimers + 2, clock: systemClock, migrate: true });
  try {
    for (let i = 0; i < pending; i++) {
      const threadId = randomUUID();
      await backend.runs.create({
        run_id: randomUUID(),
        thread_id: threadId,
        assistant_id: "bench",
        graph_id: "echo",
        metadata: {},
        thread_metadata: { graph_id: "echo", assistant_id: "bench" },
        owner: null,
        priority: 0,
        dedupe_key: null,
        multitask_strategy: "enqueue",
        available_at_ms: 0,
        if_not_exists: "create",
        kwargs: newRun(threadId, "unused").kwargs,
      });
    }
    const latencies: number[] = [];
    let errors = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: claimers }, async (_, w) => {
        for (;;) {
          const t0 = performance.now();
          const run = await backend.runs.claim(`bench-${w}`, 30_000, { maxRunningPerUser: 3 }).catch(() => {
            errors += 1;
            return null;
          });
          latencies.push(performance.now() - t0);
          if (run === null) return;
          await backend.runs.finish(run.run_id, { owner: `bench-${w}`, attempt: run.attempt }, succeeded);
        }
      }),
    );
    return { pending, claimers, ...figures(latencies, errors, performance.now() - started) };
  } finally {
    await backend.close();
  }
}

/**
 * Claim at scale (docs/scaling.md): `pending` runs on as many threads,
 * inserted in bulk, spread over `users` named users (0: all anonymous),
 * then for each claimer count, `claims` claims (each followed by its
 * finish, as a worker does) by that many concurrent claimers, each on its
 * own pooled connection. The queue stays about `pending` deep throughout.
 */
export async function claimAtScale(
  databaseUrl: string,
  options: { pending: number; users: number; claimers: number[]; claims: number },
): Promise<(LatencyFigures & { pending: number; users: number; claimers: number })[]> {
  const most = Math.max(...options.claimers);
  const backend = await createPostgresBackend({ url: databaseUrl, poolSize: most + 2, clock: systemClock, migrate: true });
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  try {
    const iso = new Date().toISOString();
    const kwargs = JSON.stringify(newRun("bench", "bench").kwargs);
    await pool.query(
      `INSERT INTO threads (thread_id, created_at, updated_at, metadata, status, "values", interrupts, config)
       SELECT 'scale-t-' || i, $2, $2, '{}', 'busy', NULL, '{}', '{}' FROM generate_series(1, $1) i`,
      [options.pending, iso],
    );
    await pool.query(
      `INSERT INTO runs (run_id, thread_id, assistant_id, graph_id, status, metadata, multitask_strategy, kwargs,
                         available_at_ms, owner, priority, created_at, updated_at)
       SELECT 'scale-r-' || i, 'scale-t-' || i, 'bench', 'echo', 'pending', '{}', 'enqueue', $2::jsonb, 0,
              CASE WHEN $3::int = 0 THEN NULL ELSE 'user-' || (i % $3::int) END, 0, $4, $4
         FROM generate_series(1, $1) i`,
      [options.pending, kwargs, options.users, iso],
    );
    await pool.query("ANALYZE runs; ANALYZE threads");
    const rows: (LatencyFigures & { pending: number; users: number; claimers: number })[] = [];
    for (const claimers of options.claimers) {
      const latencies: number[] = [];
      let errors = 0;
      let left = options.claims;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: claimers }, async (_, w) => {
          while (left > 0) {
            left -= 1;
            const t0 = performance.now();
            const run = await backend.runs.claim(`scale-${w}`, 30_000, { maxRunningPerUser: 3 }).catch(() => {
              errors += 1;
              return null;
            });
            latencies.push(performance.now() - t0);
            if (run !== null) await backend.runs.finish(run.run_id, { owner: `scale-${w}`, attempt: run.attempt }, succeeded);
          }
        }),
      );
      rows.push({ pending: options.pending, users: options.users, claimers, ...figures(latencies, errors, performance.now() - started) });
    }
    return rows;
  } finally {
    await pool.end();
    await backend.close();
  }
}

export interface FloodWaitFigures {
  flood_runs: number;
  flooder: "named" | "anonymous";
  /** `runs/wait` of the second user's one echo run on an idle server. */
  second_user_alone_ms: number;
  /** The same while the flood is queued: what fairness costs it. */
  second_user_wait_ms: number;
  /** What FIFO would have made it wait: the flood drained through the run slots first. */
  fifo_estimate_ms: number;
  errors: number;
}

/**
 * The second user's wait while the first floods (issue 12, C6): one user
 * creates `floodRuns` stateless runs of `sleep` (2 s each), named by
 * `metadata.owner` (capped per user) or anonymous (only the run slots bound
 * it); once they are queued, a second user's single `echo` run is timed
 * with `runs/wait`. Fair claims start it at the next free slot, so its wait
 * is at most one run's length (2 s) plus its own latency, where FIFO would
 * make it wait for the whole flood (`fifo_estimate_ms`: the flood through
 * the `flooderSlots` slots it can hold, the run slots or its user's cap).
 */
export async function floodWait(url: string, floodRuns: number, flooderSlots: number, flooder: "named" | "anonymous"): Promise<FloodWaitFigures> {
  const client = new Client({ apiUrl: url, callerOptions: { maxRetries: 0 } });
  const second = { owner: "second-user" };
  const timed = async () => {
    const t0 = performance.now();
    await client.runs.wait(null, "echo", { input: human("my turn"), metadata: second });
    return performance.now() - t0;
  };
  await timed();
  const alone = await timed();
  let errors = 0;
  const metadata = flooder === "named" ? { owner: "flooder" } : {};
  for (let batch = 0; batch < floodRuns; batch += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, floodRuns - batch) }, () =>
        client.runs.create(null, "sleep", { input: human("zzz"), metadata }).catch(() => {
          errors += 1;
        }),
      ),
    );
  }
  const waited = await timed();
  return {
    flood_runs: floodRuns,
    flooder,
    second_user_alone_ms: round(alone),
    second_user_wait_ms: round(waited),
    fifo_estimate_ms: Math.round((floodRuns / flooderSlots) * 2000),
    errors,
  };
}
