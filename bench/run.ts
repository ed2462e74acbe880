/**
 * `npm run bench [-- --quick] [-- --only baton,dev,inprocess,scaleout,fairness,claimscale,costs] [-- --out FILE] [-- --execution-threads N]`
 *
 * Runs every scenario against Baton, the published `langgraphjs dev` server
 * and the in-process limit, one target at a time on this machine, and prints
 * a table per scenario plus the JSON it writes to bench/results/. With both
 * Baton and in-process selected, the 64-client and concurrent-stream cases
 * are also measured in back-to-back pairs ("paired").
 * Every case records the CPU seconds of the server's process tree and of the
 * whole machine meanwhile, so a noisy machine shows in the figures.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { inProcessCosts, perRunCosts } from "./costs.ts";
import * as sc from "./scenarios.ts";
import { ROOT, benchDatabase, machineBusySeconds, startBaton, startDevServer, startScaleOut, treeCpuSeconds, treeRssBytes, type ServerTarget } from "./targets.ts";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    out: { type: "string" },
    workers: { type: "string", default: "256" },
    "execution-threads": { type: "string" },
  },
});
const quick = values.quick;
const only = new Set((values.only ?? "baton,dev,inprocess,scaleout,fairness,claimscale,costs").split(","));
const workers = Number(values.workers);

/** Sizes: the full run and the --quick one (under two minutes in all). */
const plan = quick
  ? { clients: [1, 8, 64], durationMs: 2_000, bursts: [10, 50], devBursts: [10], longWait: 200, cancels: 10, streamsSeq: 10, streamsConc: 100, threads: 500, scaleWorkers: [2], scaleClients: [1, 64], claimRuns: 500 }
  : { clients: [1, 8, 64, 256], durationMs: 10_000, bursts: [10, 50, 200], devBursts: [10, 50], longWait: 200, cancels: 50, streamsSeq: 20, streamsConc: 100, threads: 10_000, scaleWorkers: [1, 2, 4], scaleClients: [1, 64], claimRuns: 2_000 };

type Row = Record<string, unknown>;
const results: Record<string, Row[]> = {};
const record = (scenario: string, row: Row) => {
  (results[scenario] ??= []).push(row);
  process.stderr.write(`${scenario} ${JSON.stringify(row)}\n`);
};

/** Runs `work`, adding CPU seconds of the server tree, this harness and the machine. */
async function measured<T extends object>(pid: number | null, work: () => Promise<T>): Promise<T & Row> {
  // Let the harness's loop take in what queued while it was busy (an
  // in-process case starves it): a keep-alive socket the server closed
  // meanwhile must be seen closed before a client picks it again.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const server0 = pid === null ? 0 : treeCpuSeconds(pid);
  const self0 = process.cpuUsage();
  const machine0 = machineBusySeconds();
  const t0 = performance.now();
  const out = await work();
  const wall = (performance.now() - t0) / 1000;
  const self = process.cpuUsage(self0);
  const serverCpu = pid === null ? 0 : treeCpuSeconds(pid) - server0;
  const harnessCpu = (self.user + self.system) / 1e6;
  const machineCpu = machineBusySeconds() - machine0;
  return {
    ...out,
    cpu_server_s: Math.round(serverCpu * 100) / 100,
    cpu_harness_s: Math.round(harnessCpu * 100) / 100,
    // In-process cases run in the harness: its CPU is theirs, not "other".
    cpu_other_s: Math.round(Math.max(0, machineCpu - serverCpu - harnessCpu) * 100) / 100,
    wall_s: Math.round(wall * 100) / 100,
  };
}

/**
 * The two ratio targets most exposed to a machine whose speed drifts
 * between cases (this one's in-process figure moved by a quarter between
 * runs minutes apart): in-process and Baton measured back to back, `rounds`
 * times, each pair giving its own ratio. docs/benchmarks.md quotes the
 * median pair.
 */
async function pairedRatios(target: ServerTarget, rounds: number) {
  for (let round = 1; round <= rounds; round++) {
    const inProcess = await measured(null, () => sc.throughputInProcess(64, plan.durationMs));
    const baton = await measured(target.pid, () => sc.throughput(target.url, 64, plan.durationMs));
    record("paired", {
      case: "64 clients, runs/s",
      round,
      in_process: inProcess.runs_per_s,
      baton: baton.runs_per_s,
      ratio: Math.round((baton.runs_per_s / inProcess.runs_per_s) * 100) / 100,
      cpu_server_s: baton.cpu_server_s,
      cpu_harness_s: inProcess.cpu_harness_s,
    });
    const inProcessStreams = await measured(null, () => sc.streamsInProcess(plan.streamsConc, true));
    const batonStreams = await measured(target.pid, () => sc.streams(target.url, plan.streamsConc, true));
    record("paired", {
      case: `${plan.streamsConc} concurrent streams, first token p50 ms`,
      round,
      in_process: inProcessStreams.first_token_p50_ms,
      baton: batonStreams.first_token_p50_ms,
      over_ms: Math.round(batonStreams.first_token_p50_ms - inProcessStreams.first_token_p50_ms),
    });
  }
}

async function serverScenarios(target: ServerTarget, bursts: number[]) {
  const { name, url, pid } = target;
  if (name === "baton" && only.has("inprocess")) await pairedRatios(target, quick ? 1 : 3);
  for (const clients of plan.clients) {
    record("throughput", { target: name, clients, ...(await measured(pid, () => sc.throughput(url, clients, plan.durationMs))) });
  }
  for (const n of bursts) {
    for (const strategy of ["reject", "enqueue", "interrupt", "rollback"] as const) {
      record("same-thread", { target: name, ...(await measured(pid, () => sc.sameThreadBurst(url, strategy, n, 120_000))) });
    }
  }
  record("long-wait", { target: name, ...(await measured(pid, () => sc.longWait(url, plan.longWait, 90_000))) });
  record("cancel", { target: name, ...(await measured(pid, () => sc.cancelLatency(url, plan.cancels, 60_000))) });
  record("stream", { target: name, mode: `${plan.streamsSeq} sequential`, ...(await measured(pid, () => sc.streams(url, plan.streamsSeq, false))) });
  record("stream", { target: name, mode: `${plan.streamsConc} concurrent`, ...(await measured(pid, () => sc.streams(url, plan.streamsConc, true))) });
  // Memory: RSS before, after N threads with one run each, and after 5 s idle.
  const before = treeRssBytes(pid);
  const filled = await measured(pid, () => sc.fillThreads(url, plan.threads, 16, quick ? 60_000 : 600_000));
  const after = treeRssBytes(pid);
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  const idle = treeRssBytes(pid);
  const per = (bytes: number) => (filled.threads > 0 ? Math.round(bytes / filled.threads) : null);
  record("memory", {
    target: name,
    ...filled,
    rss_before_mb: Math.round(before / 1e6),
    rss_after_mb: Math.round(after / 1e6),
    rss_idle_mb: Math.round(idle / 1e6),
    bytes_per_thread: per(after - before),
    bytes_per_thread_after_idle: per(idle - before),
  });
}

/**
 * Scale-out: one API process and 1, 2, 4 worker processes on Postgres and
 * Redis, throughput and latency as for embedded; then claim latency on the
 * Postgres queue itself.
 */
async function scaleOutScenarios() {
  for (const processes of plan.scaleWorkers) {
    const target = await startScaleOut(workers, processes);
    try {
      for (const clients of plan.scaleClients) {
        record("scale-out", { target: target.name, worker_processes: processes, clients, ...(await measured(target.pid, () => sc.throughput(target.url, clients, plan.durationMs))) });
      }
      if (processes === 2) {
        record("long-wait", { target: target.name, ...(await measured(target.pid, () => sc.longWait(target.url, plan.longWait, 90_000))) });
      }
    } finally {
      await target.stop();
    }
  }
  const database = await benchDatabase();
  try {
    for (const claimers of [1, 8]) {
      record("claim", { target: "postgres queue", ...(await measured(null, () => sc.claimLatency(database.url, plan.claimRuns, claimers))) });
    }
  } finally {
    await database.drop();
  }
}

/**
 * The second user's wait while the first floods (docs/benchmarks.md,
 * "Fairness"): Baton embedded and scale-out (1 API + 1 worker process) with
 * 4 run slots, each case on a fresh server, the flooder named (capped at
 * maxRunningPerUser, 3) or anonymous (bounded only by the slots).
 */
async function fairnessScenarios() {
  const slots = 4;
  const floodRuns = quick ? 50 : 200;
  for (const [name, start] of [
    ["baton", () => startBaton(slots, values["execution-threads"])],
    ["baton scale-out", () => startScaleOut(slots, 1)],
  ] as const) {
    for (const flooder of ["named", "anonymous"] as const) {
      const target = await start();
      try {
        const flooderSlots = flooder === "named" ? Math.min(slots, 3) : slots;
        record("fairness", { target: name, slots, ...(await measured(target.pid, () => sc.floodWait(target.url, floodRuns, flooderSlots, flooder))) });
      } finally {
        await target.stop();
      }
    }
  }
}

/**
 * Claim at scale (docs/scaling.md): 100,000 pending runs (10,000 with
 * --quick), all anonymous or spread over 1,000 named users, claimed by 1 to
 * 64 concurrent claimers on one Postgres.
 */
async function claimScaleScenarios() {
  const pending = quick ? 10_000 : 100_000;
  for (const users of [0, 1_000]) {
    const database = await benchDatabase();
    try {
      const rows = await sc.claimAtScale(database.url, { pending, users, claimers: [1, 8, 64], claims: quick ? 500 : 2_000 });
      for (const row of rows) record("claim-at-scale", { target: "postgres queue", ...row });
    } finally {
      await database.drop();
    }
  }
}

async function main() {
  const started = Date.now();
  if (only.has("fairness")) await fairnessScenarios();
  if (only.has("claimscale")) await claimScaleScenarios();
  if (only.has("costs")) {
    // Per-run costs of scale-out (docs/scaling.md): 1 API + 1 worker on their own database and Redis.
    const costs = await perRunCosts(quick ? 50 : 300);
    record("run-costs", { target: "in-process (the floor)", ...(await inProcessCosts(quick ? 50 : 300)) });
    for (const row of costs.rows) record("run-costs", { target: "baton scale-out (1 api + 1 worker)", ...row });
    record("run-costs", { target: "baton scale-out (1 api + 1 worker)", phase: "per streamed token (estimate)", ...costs.per_token });
    for (const row of costs.reads) record("run-reads", { target: "baton scale-out (1 api + 1 worker)", ...row });
    for (const row of costs.redis) record("run-redis", { target: "baton scale-out (1 api + 1 worker)", ...row });
    for (const row of costs.statements) record("run-statements", { target: "baton scale-out (1 api + 1 worker)", ...row });
  }
  if (only.has("inprocess")) {
    for (const clients of plan.clients) {
      record("throughput", { target: "in-process", clients, ...(await measured(null, () => sc.throughputInProcess(clients, plan.durationMs))) });
    }
    record("stream", { target: "in-process", mode: `${plan.streamsSeq} sequential`, ...(await measured(null, () => sc.streamsInProcess(plan.streamsSeq, false))) });
    record("stream", { target: "in-process", mode: `${plan.streamsConc} concurrent`, ...(await measured(null, () => sc.streamsInProcess(plan.streamsConc, true))) });
  }
  if (only.has("scaleout")) await scaleOutScenarios();
  for (const [key, start, bursts] of [
    ["baton", (n: number) => startBaton(n, values["execution-threads"]), plan.bursts],
    ["dev", startDevServer, plan.devBursts],
  ] as const) {
    if (!only.has(key)) continue;
    const target = await start(workers);
    try {
      await serverScenarios(target, bursts);
    } finally {
      await target.stop();
    }
  }
  const report = {
    date: new Date().toISOString(),
    quick,
    machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model, memory_gb: Math.round(totalmem() / 1e9), node: process.version },
    workers,
    execution_threads: values["execution-threads"] ?? "auto",
    duration_s: Math.round((Date.now() - started) / 1000),
    results,
  };
  for (const [scenario, rows] of Object.entries(results)) {
    console.log(`\n${scenario}`);
    console.table(rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : v]))));
  }
  const out = values.out ?? join(ROOT, "bench/results", `${report.date.replace(/[:.]/g, "-")}${quick ? "-quick" : ""}.json`);
  mkdirSync(join(out, ".."), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2));
  console.log(`\nwrote ${out} (${report.duration_s} s)`);
}

await main();
