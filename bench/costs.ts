/**
 * Per-run costs of scale-out Baton (docs/scaling.md, "Per-run costs"): one
 * API and one worker process on their own Postgres database and their own
 * Redis server, so the database's and Redis's counters count Baton's work
 * only. For a phase of runs, the deltas of:
 *
 * - API and worker CPU (from /proc, per process role), the CPU of the host's
 *   Postgres processes (so the machine must be quiet) and of the Redis server;
 * - Postgres transactions (pg_stat_database xact_commit + xact_rollback:
 *   each statement outside a transaction is one, so for Baton's mostly
 *   single-statement work this is close to the statements sent) and rows
 *   written and read;
 * - Redis commands (INFO commandstats, summed) and bytes in and out (INFO
 *   stats total_net_input_bytes / total_net_output_bytes);
 *
 * divided by the runs. When the Postgres server preloads `pg_stat_statements`
 * (not the default; docs/scaling.md says how), also each statement's calls,
 * rows, buffers and time per run, and the statements per run in all
 * (BEGIN and COMMIT included, and so are the statements a function runs
 * inside: the round trips are the rest, which docs/scaling.md counts).
 * Also each table's and index's rows read, and each Redis command's calls
 * and time, per run. Phase "wait": `runs.wait` of `echo` (no streaming
 * client). Phase "stream": `runs.stream` of `slow-echo` in messages-tuple
 * mode, whose model streams 20 tokens: the difference to "wait", divided by
 * 20, estimates the cost of one streamed token.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { Client } from "@langchain/langgraph-sdk";
import { HumanMessage } from "@langchain/core/messages";
import { MemorySaver } from "@langchain/langgraph";
import pg from "pg";
import { echo, slowEcho } from "./graphs/graphs.ts";
import { benchDatabase, freePort, processTree, startScaleOut, statCpuSeconds } from "./targets.ts";

const TOKENS_PER_STREAMED_RUN = 20;

interface Snapshot {
  apiCpuS: number;
  workerCpuS: number;
  /** CPU of every process named postgres on this host (the server serves only the bench on a quiet machine). */
  pgCpuS: number;
  redisCpuS: number;
  pgTransactions: number;
  pgBytes: number;
  pgRowsWritten: number;
  pgRowsRead: number;
  redisCommands: number;
  /** Per Redis command: calls and microseconds spent (INFO commandstats; commands a script runs count on their own). */
  redisByCommand: Map<string, { calls: number; usec: number }>;
  redisBytesIn: number;
  redisBytesOut: number;
  relations: Map<string, { scans: number; rows: number }>;
}

/** Rows one table's sequential scans, or one index's scans, read in a phase, per run (pg_stat_user_tables and _indexes). */
export interface RelationReadRow {
  phase: RunCostRow["phase"];
  relation: string;
  scans_per_run: number;
  rows_read_per_run: number;
}

/** Per relation: scans and rows read so far (tables: sequential; indexes: index scans). */
async function relationReads(admin: pg.Client): Promise<Map<string, { scans: number; rows: number }>> {
  const { rows } = await admin.query<{ relation: string; scans: string; rows: string }>(
    `SELECT 'table ' || relname AS relation, COALESCE(seq_scan, 0) AS scans, COALESCE(seq_tup_read, 0) AS rows FROM pg_stat_all_tables
     UNION ALL
     SELECT 'index ' || indexrelname, COALESCE(idx_scan, 0), COALESCE(idx_tup_read, 0) FROM pg_stat_all_indexes`,
  );
  return new Map(rows.map((row) => [row.relation, { scans: Number(row.scans), rows: Number(row.rows) }]));
}

function readsPerRun(
  phase: RunCostRow["phase"],
  runs: number,
  before: Map<string, { scans: number; rows: number }>,
  after: Map<string, { scans: number; rows: number }>,
): RelationReadRow[] {
  return [...after]
    .map(([relation, b]) => {
      const a = before.get(relation) ?? { scans: 0, rows: 0 };
      return { phase, relation, scans_per_run: round2((b.scans - a.scans) / runs), rows_read_per_run: round2((b.rows - a.rows) / runs) };
    })
    .filter((row) => row.rows_read_per_run >= 0.5)
    .sort((x, y) => y.rows_read_per_run - x.rows_read_per_run);
}

/** One Redis command's share of a phase, per run. */
export interface RedisCommandRow {
  phase: RunCostRow["phase"];
  command: string;
  calls_per_run: number;
  usec_per_run: number;
}

function redisCommandsPerRun(phase: RunCostRow["phase"], runs: number, a: Snapshot, b: Snapshot): RedisCommandRow[] {
  return [...b.redisByCommand]
    .map(([command, after]) => {
      const before = a.redisByCommand.get(command) ?? { calls: 0, usec: 0 };
      return { phase, command, calls_per_run: round2((after.calls - before.calls) / runs), usec_per_run: round2((after.usec - before.usec) / runs) };
    })
    .filter((row) => row.calls_per_run > 0)
    .sort((x, y) => y.usec_per_run - x.usec_per_run);
}

/** One statement's share of a phase, per run (from pg_stat_statements). */
export interface StatementCostRow {
  phase: RunCostRow["phase"];
  statement: string;
  calls_per_run: number;
  rows_per_run: number;
  buffers_per_run: number;
  exec_ms_per_run: number;
}

export interface RunCostRow {
  phase: "wait" | "stream";
  runs: number;
  api_cpu_ms_per_run: number;
  worker_cpu_ms_per_run: number;
  pg_cpu_ms_per_run: number;
  redis_cpu_ms_per_run: number;
  pg_transactions_per_run: number;
  /** Growth of the database's size (tables, indexes, TOAST; pages, so rounded up to 8 KB steps overall). */
  pg_bytes_per_run: number;
  pg_rows_written_per_run: number;
  pg_rows_read_per_run: number;
  redis_commands_per_run: number;
  redis_bytes_per_run: number;
  /** Statements sent per run, BEGIN and COMMIT included: the round trips (only with pg_stat_statements). */
  pg_statements_per_run?: number;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** Whether the server preloads pg_stat_statements; if so, the extension is made in the bench database. */
async function statementStatsOn(admin: pg.Client): Promise<boolean> {
  const { rows } = await admin.query<{ libs: string }>("SELECT current_setting('shared_preload_libraries') AS libs");
  if (!rows[0]!.libs.split(",").some((lib) => lib.trim() === "pg_stat_statements")) return false;
  await admin.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  return true;
}

async function resetStatementStats(admin: pg.Client): Promise<void> {
  await admin.query("SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)");
}

/** The database's statements since the last reset, per run, busiest (by buffers touched) first; the bench's own are left out. */
async function statementCosts(admin: pg.Client, phase: RunCostRow["phase"], runs: number): Promise<StatementCostRow[]> {
  const { rows } = await admin.query<{ query: string; calls: string; rows: string; buffers: string; ms: number }>(
    `SELECT query, calls, rows, shared_blks_hit + shared_blks_read AS buffers, total_exec_time AS ms
       FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND userid = (SELECT oid FROM pg_roles WHERE rolname = current_user)
        AND query NOT LIKE '%pg_stat%'
      ORDER BY buffers DESC, calls DESC`,
  );
  return rows.map((row) => ({
    phase,
    statement: row.query.replace(/\s+/g, " ").slice(0, 160),
    calls_per_run: round2(Number(row.calls) / runs),
    rows_per_run: round2(Number(row.rows) / runs),
    buffers_per_run: round2(Number(row.buffers) / runs),
    exec_ms_per_run: round2(row.ms / runs),
  }));
}

/** CPU seconds of the processes in the tree whose command line holds `--role <role>`. */
function roleCpuSeconds(root: number, role: string): number {
  let seconds = 0;
  for (const pid of processTree(root)) {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const at = args.indexOf("--role");
      if (at < 0 || args[at + 1] !== role) continue;
      seconds += statCpuSeconds(`/proc/${pid}/stat`);
    } catch {
      // gone
    }
  }
  return seconds;
}

/** CPU seconds of the processes named `name` (a connection that closed during a phase takes its share with it). */
function namedCpuSeconds(name: string): number {
  let seconds = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")) !== name) continue;
      seconds += statCpuSeconds(`/proc/${entry}/stat`);
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
  const { rows } = await admin.query<{ x: string; w: string; r: string; bytes: string }>(
    `SELECT xact_commit + xact_rollback AS x, tup_inserted + tup_updated + tup_deleted AS w, tup_returned + tup_fetched AS r,
            pg_database_size(datname) AS bytes
       FROM pg_stat_database WHERE datname = $1`,
    [database],
  );
  const redisByCommand = new Map<string, { calls: number; usec: number }>();
  for (const line of (await redisInfo(redisPort, "commandstats")).split("\n")) {
    const match = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (match !== null) redisByCommand.set(match[1]!, { calls: Number(match[2]), usec: Number(match[3]) });
  }
  const commands = [...redisByCommand.values()].reduce((sum, c) => sum + c.calls, 0);
  const stats = await redisInfo(redisPort, "stats");
  const cpu = await redisInfo(redisPort, "cpu");
  const cpuStat = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(cpu)?.[1] ?? 0);
  const stat = (name: string) => Number(new RegExp(`${name}:(\\d+)`).exec(stats)?.[1] ?? 0);
  return {
    apiCpuS: roleCpuSeconds(rootPid, "api"),
    workerCpuS: roleCpuSeconds(rootPid, "worker"),
    pgCpuS: namedCpuSeconds("postgres"),
    redisCpuS: cpuStat("used_cpu_sys") + cpuStat("used_cpu_user"),
    pgTransactions: Number(rows[0]!.x),
    pgBytes: Number(rows[0]!.bytes),
    pgRowsWritten: Number(rows[0]!.w),
    pgRowsRead: Number(rows[0]!.r),
    redisCommands: commands,
    redisByCommand,
    redisBytesIn: stat("total_net_input_bytes"),
    redisBytesOut: stat("total_net_output_bytes"),
    relations: await relationReads(admin),
  };
}

function perRun(phase: RunCostRow["phase"], runs: number, a: Snapshot, b: Snapshot): RunCostRow {
  const per = (x: number) => round2(x / runs);
  return {
    phase,
    runs,
    api_cpu_ms_per_run: per((b.apiCpuS - a.apiCpuS) * 1000),
    worker_cpu_ms_per_run: per((b.workerCpuS - a.workerCpuS) * 1000),
    pg_cpu_ms_per_run: per((b.pgCpuS - a.pgCpuS) * 1000),
    redis_cpu_ms_per_run: per((b.redisCpuS - a.redisCpuS) * 1000),
    pg_transactions_per_run: per(b.pgTransactions - a.pgTransactions),
    pg_bytes_per_run: per(b.pgBytes - a.pgBytes),
    pg_rows_written_per_run: per(b.pgRowsWritten - a.pgRowsWritten),
    pg_rows_read_per_run: per(b.pgRowsRead - a.pgRowsRead),
    redis_commands_per_run: per(b.redisCommands - a.redisCommands),
    redis_bytes_per_run: per(b.redisBytesIn + b.redisBytesOut - a.redisBytesIn - a.redisBytesOut),
  };
}

/**
 * The in-process floor: the CPU the same graphs cost invoked in this
 * process on LangGraph's in-memory saver (echo: invoke; slow-echo: stream
 * in messages mode, every chunk read), per run and per streamed token. What
 * a server adds is the difference.
 */
export async function inProcessCosts(runs: number): Promise<{ wait_cpu_ms_per_run: number; stream_cpu_ms_per_run: number; cpu_ms_per_token: number }> {
  const cpuMs = () => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1000;
  };
  const waitGraph = echo.withConfig({});
  const streamGraph = slowEcho.withConfig({});
  for (const graph of [waitGraph, streamGraph]) (graph as unknown as { checkpointer: MemorySaver }).checkpointer = new MemorySaver();
  const input = () => ({ messages: [new HumanMessage("hi")] });
  for (let i = 0; i < 10; i++) await waitGraph.invoke(input(), { configurable: { thread_id: "warm" } });
  let started = cpuMs();
  for (let i = 0; i < runs; i++) await waitGraph.invoke(input(), { configurable: { thread_id: `t${i % 30}` } });
  const wait = (cpuMs() - started) / runs;
  started = cpuMs();
  for (let i = 0; i < runs; i++) {
    for await (const _ of await streamGraph.stream(input(), { configurable: { thread_id: `s${i % 30}` }, streamMode: "messages" })) {
      // Every chunk read.
    }
  }
  const stream = (cpuMs() - started) / runs;
  return { wait_cpu_ms_per_run: round2(wait), stream_cpu_ms_per_run: round2(stream), cpu_ms_per_token: round2((stream - wait) / TOKENS_PER_STREAMED_RUN) };
}

/** Costs per run (and the estimate per streamed token) of `runs` runs in each phase, on one thread per 10 runs. */
export async function perRunCosts(
  runs: number,
): Promise<{ rows: RunCostRow[]; per_token: Record<string, number>; statements: StatementCostRow[]; reads: RelationReadRow[]; redis: RedisCommandRow[] }> {
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
    const statements: StatementCostRow[] = [];
    const reads: RelationReadRow[] = [];
    const redisCommands: RedisCommandRow[] = [];
    const perStatement = await statementStatsOn(admin);
    /** Closes a phase: its per-run row, and its statements when counted (then reset for the next phase). */
    const closePhase = async (phase: RunCostRow["phase"], before: Snapshot, after: Snapshot) => {
      const row = perRun(phase, runs, before, after);
      reads.push(...readsPerRun(phase, runs, before.relations, after.relations));
      redisCommands.push(...redisCommandsPerRun(phase, runs, before, after));
      if (perStatement) {
        const phaseStatements = await statementCosts(admin, phase, runs);
        row.pg_statements_per_run = round2(phaseStatements.reduce((sum, s) => sum + s.calls_per_run, 0));
        statements.push(...phaseStatements);
        await resetStatementStats(admin);
      }
      rows.push(row);
    };
    if (perStatement) await resetStatementStats(admin);
    let before = await snapshot(target.pid, admin, name, redisPort);
    for (let i = 0; i < runs; i++) await client.runs.wait(threads[i % threads.length]!.thread_id, "echo", { input });
    let after = await snapshot(target.pid, admin, name, redisPort);
    await closePhase("wait", before, after);
    before = await snapshot(target.pid, admin, name, redisPort);
    for (let i = 0; i < runs; i++) {
      for await (const _ of client.runs.stream(threads[i % threads.length]!.thread_id, "slow-echo", { input, streamMode: "messages-tuple" })) {
        // Every event read, as a chat UI reads them.
      }
    }
    after = await snapshot(target.pid, admin, name, redisPort);
    await closePhase("stream", before, after);
    const [wait, stream] = rows as [RunCostRow, RunCostRow];
    const token = (key: keyof RunCostRow) => Math.round((((stream[key] as number) - (wait[key] as number)) / TOKENS_PER_STREAMED_RUN) * 100) / 100;
    const per_token = {
      api_cpu_ms: token("api_cpu_ms_per_run"),
      worker_cpu_ms: token("worker_cpu_ms_per_run"),
      pg_cpu_ms: token("pg_cpu_ms_per_run"),
      redis_cpu_ms: token("redis_cpu_ms_per_run"),
      redis_commands: token("redis_commands_per_run"),
      redis_bytes: token("redis_bytes_per_run"),
    };
    return { rows, per_token, statements, reads, redis: redisCommands };
  } finally {
    await target.stop();
    await admin.end();
    await database.drop();
    redis.kill("SIGKILL");
  }
}
