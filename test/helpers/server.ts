/** Starts a real Baton server in this process on port 0 with its own data directory. */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { expect } from "vitest";
import { gate } from "../fixtures/graphs/graphs.ts";
import { freshDatabase } from "./postgres.ts";
import { loadConfig, loadProject, type Config } from "../../src/config.ts";
import { createLogger, createServer, type BatonServer } from "../../src/server.ts";

export const FIXTURES = join(import.meta.dirname, "../fixtures/graphs/langgraph.json");

export interface TestServer {
  server: BatonServer;
  client: Client;
  url: string;
  dataDir: string;
  /** The server's own Postgres database, in the scale-out project. */
  databaseUrl: string | undefined;
  close(): Promise<void>;
}

/** Set by the "scale-out" vitest project: servers use Postgres and Redis instead of SQLite. */
export const SCALE_OUT = process.env.BATON_TEST_BACKEND === "postgres";
/**
 * Embedded servers execute graphs in one execution thread (the default on
 * a machine with two or more cores), or on the test's own event loop when
 * the "embedded-inline" vitest project sets BATON_TEST_THREADS=0. Set
 * explicitly, so the suite does not depend on the machine's core count.
 */
export const EXECUTION_THREADS = Number(process.env.BATON_TEST_THREADS ?? 1);
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

export async function startServer(overrides: Partial<Record<keyof Config, unknown>> = {}): Promise<TestServer> {
  const dataDir = (overrides.dataDir as string | undefined) ?? mkdtempSync(join(tmpdir(), "baton-test-"));
  const database = SCALE_OUT ? await freshDatabase("server") : undefined;
  const scaleOut =
    database === undefined
      ? { executionThreads: EXECUTION_THREADS }
      : { databaseUrl: database.url, redisUrl: REDIS_URL, redisPrefix: `baton-test:${randomUUID()}:` };
  const config = loadConfig({ port: 0, dataDir, configPath: FIXTURES, shutdownGraceMs: 0, ...scaleOut, ...overrides }, {});
  const logger = createLogger({ level: "warn", format: "json", write: (line) => process.stderr.write(line) });
  const server = await createServer(config, loadProject(config.configPath, {}), logger).catch(async (error: unknown) => {
    await database?.drop();
    throw error;
  });
  const client = new Client({ apiUrl: server.url, defaultHeaders: {} });
  return {
    server,
    client,
    url: server.url,
    dataDir,
    databaseUrl: database?.url,
    async close() {
      await server.close(0);
      await database?.drop();
      if (overrides.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const human = (content: string) => ({ messages: [{ role: "user", content }] });

/** Polls `check` until it returns a value other than undefined (for cross-process facts only). */
export async function until<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Starts a run of the `gated` fixture on a new thread and resolves once its
 * node is blocked on the gate (a fact in this process: awaited, not slept).
 * `message` is the run's input text, which names the gate.
 */
export async function startGatedRun(client: Client, options: { streamMode?: ("values" | "updates")[]; streamResumable?: boolean } = {}) {
  const thread = await client.threads.create();
  const name = `g-${crypto.randomUUID()}`;
  const g = gate(name);
  const message = `gate:${name}`;
  const run = await client.runs.create(thread.thread_id, "gated", { input: human(message), ...options });
  await expect.poll(() => g.entered).toBe(1);
  return { thread, run, gate: g, message };
}
