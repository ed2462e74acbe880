/**
 * Per-run costs of scale-out Baton (docs/scaling.md, "Per-run costs"): one
 * API and one worker process on their own Postgres database and their own
 * Redis server, so the database's and Redis's counters count Baton's work
 * only. For a phase of runs, the deltas of:
 *
 * - API and worker CPU (from /proc, per process role);
 * - Postgres transactions (pg_stat_database xact_commit + xact_rollback:
 *   each statement outside a transaction is one, so for Baton's mostly
 *   single-statement work this is close to the statements sent) and rows
 *   written and read;
 * - Redis commands (INFO commandstats, summed) and bytes in and out (INFO
 *   stats total_net_input_bytes / total_net_output_bytes);
 *
 * divided by the runs. Phase "wait": `runs.wait` of `echo` (no streaming
 * client). Phase "stream": `runs.stream` of `slow-echo` in messages-tuple
 * mode, whose model streams 20 tokens: the difference to "wait", divided by
 * 20, estimates the cost of one streamed token.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { Client } from "@langchain/langgraph-sdk";
import pg from "pg";
import { benchDatabase, freePort, processTree, startScaleOut } from "./targets.ts";

const TICKS_PER_SECOND = 100;
const TOKENS_PER_STREAMED_RUN = 20;

interface Snapshot {
  apiCpuS: number;
  workerCpuS: number;
  pgTransactions: number;
  pgRowsWritten: number;
  pgRowsRead: number;
  redisCommands: number;
  redisBytesIn: number;
  redisBytesOut: number;
}

export interface RunCostRow {
  phase: "wait" | "stream";
  runs: number;
  api_cpu_ms_per_run: number;
  worker_cpu_ms_per_run: number;
  pg_transactions_per_run: number;
  pg_rows_written_per_run: number;
  pg_rows_read_per_run: number;
  redis_commands_per_run: number;
  redis_bytes_per_run: number;
}

/** CPU seconds of the processes in the tree whose command line holds `--role <role>`. */
function roleCpuSeconds(root: number, role: string): number {
  let seconds = 0;
  for (const pid of processTree(root)) {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const at = args.indexOf("--role");
      if (at < 0 || args[at + 1] !== role) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      seconds += (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
    } catch {
      // gone
    }
  }
  return seconds;
}

async function redisInfo(port: number, section: string): Promise<string> {
  const child = spawn("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "info", section]);
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  await new Promise((resolve) => child.once("exit", resolve));
  return out;
}

async function snapshot(rootPid: number, admin: pg.Client, database: string, redisPort: number): Promise<Snapshot> {
  // Backends report their statistics at most once a second (Postgres 15).
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  await admin.query("SELECT pg_stat_clear_snapshot()");
  const { rows } = await admin.query<{ x: string; w: string; r: string }>(
    `SELECT xact_commit + xact_rollback AS x, tup_inserted + tup_updated + tup_deleted AS w, tup_returned + tup_fetched AS r
       FROM pg_stat_database WHERE datname = $1`,
    [database],
  );
  const commands = (await redisInfo(redisPort, "commandstats"))
    .split("\n")
    .map((line) => /calls=(\d+)/.exec(line)?.[1])
    .filter((calls): calls is string => calls !== undefined)
    .reduce((sum, calls) => sum + Number(calls), 0);
  const stats = await redisInfo(redisPort, "stats");
  const stat = (name: string) => Number(new RegExp(`${name}:(\\d+)`).exec(stats)?.[1] ?? 0);
  return {
    apiCpuS: roleCpuSeconds(rootPid, "api"),
    workerCpuS: roleCpuSeconds(rootPid, "worker"),
    pgTransactions: Number(rows[0]!.x),
    pgRowsWritten: Number(rows[0]!.w),
    pgRowsRead: Number(rows[0]!.r),
    redisCommands: commands,
    redisBytesIn: stat("total_net_input_bytes"),
    redisBytesOut: stat("total_net_output_bytes"),
  };
}

function perRun(phase: RunCostRow["phase"], runs: number, a: Snapshot, b: Snapshot): RunCostRow {
  const per = (x: number) => Math.round((x / runs) * 100) / 100;
  return {
    phase,
    runs,
    api_cpu_ms_per_run: per((b.apiCpuS - a.apiCpuS) * 1000),
    worker_cpu_ms_per_run: per((b.workerCpuS - a.workerCpuS) * 1000),
    pg_transactions_per_run: per(b.pgTransactions - a.pgTransactions),
    pg_rows_written_per_run: per(b.pgRowsWritten - a.pgRowsWritten),
    pg_rows_read_per_run: per(b.pgRowsRead - a.pgRowsRead),
    redis_commands_per_run: per(b.redisCommands - a.redisCommands),
    redis_bytes_per_run: per(b.redisBytesIn + b.redisBytesOut - a.redisBytesIn - a.redisBytesOut),
  };
}

/** Costs per run (and the estimate per streamed token) of `runs` runs in each phase, on one thread per 10 runs. */
export async function perRunCosts(runs: number): Promise<{ rows: RunCostRow[]; per_token: Record<string, number> }> {
  const redisPort = await freePort();
  const redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  const database = await benchDatabase();
  const name = new URL(database.url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
  const target = await startScaleOut(64, 1, { database, redisUrl: `redis://127.0.0.1:${redisPort}` });
  try {
    const client = new Client({ apiUrl: target.url });
    const threads = await Promise.all(Array.from({ length: Math.ceil(runs / 10) }, () => client.threads.create()));
    const input = { messages: [{ role: "user", content: "hi" }] };
    for (let i = 0; i < 10; i++) await client.runs.wait(threads[0]!.thread_id, "echo", { input });
    const rows: RunCostRow[] = [];
    let before = await snapshot(target.pid, admin, name, redisPort);
    for (let i = 0; i < runs; i++) await client.runs.wait(threads[i % threads.length]!.thread_id, "echo", { input });
    let after = await snapshot(target.pid, admin, name, redisPort);
    rows.push(perRun("wait", runs, before, after));
    before = after;
    for (let i = 0; i < runs; i++) {
      for await (const _ of client.runs.stream(threads[i % threads.length]!.thread_id, "slow-echo", { input, streamMode: "messages-tuple" })) {
        // Every event read, as a chat UI reads them.
      }
    }
    after = await snapshot(target.pid, admin, name, redisPort);
    rows.push(perRun("stream", runs, before, after));
    const [wait, stream] = rows as [RunCostRow, RunCostRow];
    const token = (key: keyof RunCostRow) => Math.round((((stream[key] as number) - (wait[key] as number)) / TOKENS_PER_STREAMED_RUN) * 100) / 100;
    const per_token = {
      api_cpu_ms: token("api_cpu_ms_per_run"),
      worker_cpu_ms: token("worker_cpu_ms_per_run"),
      redis_commands: token("redis_commands_per_run"),
      redis_bytes: token("redis_bytes_per_run"),
    };
    return { rows, per_token };
  } finally {
    await target.stop();
    await admin.end();
    await database.drop();
    redis.kill("SIGKILL");
  }
}
