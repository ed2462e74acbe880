/**
 * What the benchmark measures: Baton and the published `langgraphjs dev`
 * server as real processes on loopback, with the same graphs, and the
 * in-process limit (the graph invoked directly with an in-memory saver).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

export const ROOT = join(import.meta.dirname, "..");
export const GRAPHS = join(ROOT, "bench/graphs");

export interface ServerTarget {
  name: string;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export async function waitUntilUp(url: string, child: ChildProcess, log: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${log().slice(-2000)}`);
    try {
      if ((await fetch(`${url}/ok`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`server at ${url} did not answer /ok within ${timeoutMs} ms: ${log().slice(-2000)}`);
}

function launch(name: string, command: string, args: string[], url: string, cleanup: () => void | Promise<void>, extraEnv: NodeJS.ProcessEnv = {}, ready: (output: string) => boolean = () => true): Promise<ServerTarget> {
  // Embedded Baton: DATABASE_URL and REDIS_URL (set by CI for the tests) would select scale-out.
  const env: NodeJS.ProcessEnv = { ...process.env, LANGSMITH_TRACING: "false", LANGCHAIN_TRACING_V2: "false" };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  Object.assign(env, extraEnv);
  const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
  child.stderr.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
  let stopping = false;
  child.once("exit", (code, signal) => {
    if (!stopping) process.stderr.write(`\n${name} exited unexpectedly (code ${code}, signal ${signal}); its last output:\n${output.slice(-4000)}\n`);
  });
  const stop = async () => {
    stopping = true;
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      for (const pid of processTree(child.pid!).reverse()) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      await exited;
    }
    await cleanup();
  };
  const up = async () => {
    await waitUntilUp(url, child, () => output, 120_000);
    // Every process of the target has started (not only the one answering /ok).
    const deadline = Date.now() + 120_000;
    while (!ready(output)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${name} did not start: ${output.slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  return up().then(
    () => ({ name, url, pid: child.pid!, stop }),
    async (error: unknown) => {
      await stop();
      throw error;
    },
  );
}

export async function startBaton(workers: number, executionThreads?: string): Promise<ServerTarget> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "baton-bench-"));
  const args = [join(ROOT, "bin/baton.js"), "serve", "--config", join(GRAPHS, "langgraph.json"), "--port", String(port), "--data-dir", dataDir];
  const threads = executionThreads === undefined ? [] : ["--execution-threads", executionThreads];
  return launch("baton", process.execPath, [...args, "--workers", String(workers), ...threads, "--log-level", "warn"], `http://127.0.0.1:${port}`, () =>
    rmSync(dataDir, { recursive: true, force: true }),
  );
}

const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** A new, empty Postgres database on DATABASE_URL's server, dropped by `drop`. */
export async function benchDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `baton_bench_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(DATABASE_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/**
 * Scale-out Baton: one API process and `workerProcesses` worker processes on
 * a fresh Postgres database and a fresh Redis prefix, all children of one
 * shell so the process tree's CPU is the cluster's (Postgres's and Redis's
 * own CPU shows under cpu_other_s).
 */
export async function startScaleOut(
  workers: number,
  workerProcesses: number,
  /** A database (kept: the caller drops it) and a Redis to use instead of fresh ones on the defaults. */
  use: { database?: { url: string }; redisUrl?: string } = {},
): Promise<ServerTarget> {
  const port = await freePort();
  const database = use.database === undefined ? await benchDatabase() : { url: use.database.url, drop: async () => {} };
  const baton = (role: string, listen: number) =>
    [process.execPath, join(ROOT, "bin/baton.js"), "serve", "--config", join(GRAPHS, "langgraph.json"), "--role", role, "--port", String(listen), "--workers", String(workers), "--log-level", "warn"]
      .map((arg) => `'${arg}'`)
      .join(" ");
  // Every process applies pending migrations at start; they take turns on an advisory lock.
  const script = [`${baton("api", port)} &`, ...Array.from({ length: workerProcesses }, () => `${baton("worker", 0)} &`), "wait"].join("\n");
  const env = { DATABASE_URL: database.url, REDIS_URL: use.redisUrl ?? REDIS_URL, BATON_REDIS_PREFIX: `baton-bench:${process.pid}:${Date.now()}:` };
  return launch(`baton scale-out (1 api + ${workerProcesses} workers)`, "/bin/sh", ["-c", script], `http://127.0.0.1:${port}`, () => database.drop(), env, (output) =>
    output.split("worker listening on").length - 1 >= workerProcesses);
}

export async function startDevServer(workers: number): Promise<ServerTarget> {
  const port = await freePort();
  const bin = join(ROOT, "node_modules/@langchain/langgraph-cli/dist/cli/cli.mjs");
  const args = [bin, "dev", "--port", String(port), "--host", "127.0.0.1", "--config", GRAPHS, "--no-browser", "--no-reload", "--n-jobs-per-worker", String(workers)];
  // The dev server persists to .langgraph_api/ next to the config; remove it after.
  return launch("langgraphjs dev", process.execPath, args, `http://127.0.0.1:${port}`, () =>
    rmSync(join(GRAPHS, ".langgraph_api"), { recursive: true, force: true }),
  );
}

/** The pid and all its descendants (from /proc). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // process ended while reading
    }
  }
  const out: number[] = [];
  const visit = (pid: number) => {
    out.push(pid);
    for (const child of children.get(pid) ?? []) visit(child);
  };
  visit(root);
  return out;
}

const TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user + system) in a `/proc/<pid>/stat` or
 * `/proc/<pid>/task/<tid>/stat` file: fields 14 and 15, the 12th and 13th
 * after the command name. Throws if the process or thread is gone.
 */
export function statCpuSeconds(path: string): number {
  const stat = readFileSync(path, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** CPU seconds used so far by a process tree. */
export function treeCpuSeconds(root: number): number {
  let seconds = 0;
  for (const pid of processTree(root)) {
    try {
      seconds += statCpuSeconds(`/proc/${pid}/stat`);
    } catch {
      // gone
    }
  }
  return seconds;
}

/** Resident memory of a process tree, in bytes. */
export function treeRssBytes(root: number): number {
  let kb = 0;
  for (const pid of processTree(root)) {
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      kb += Number(match?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return kb * 1024;
}

/** CPU seconds the whole machine spent busy so far (all cores). */
export function machineBusySeconds(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return (fields.reduce((a, b) => a + b, 0) - idle) / TICKS_PER_SECOND;
}
