/**
 * The clock check at start, through createServer (issue 16, item 5): a
 * scale-out process whose clock is off from the database's by more than a
 * quarter of the lease refuses to start with a message naming the offset and
 * the limit; one within the limit starts and runs graphs.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { FIXTURES, human } from "../helpers/server.ts";
import { ConfigError, loadConfig, loadProject } from "../../src/config.ts";
import { createLogger, createServer } from "../../src/server.ts";

let db: TestDatabase;
const dataDir = mkdtempSync(join(tmpdir(), "baton-clock-"));
beforeAll(async () => {
  db = await freshDatabase("clock_start");
});
afterAll(async () => {
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

const config = () => loadConfig({ port: 0, dataDir, configPath: FIXTURES, shutdownGraceMs: 0, databaseUrl: db.url, leaseMs: 30_000 }, {});
const logger = createLogger({ level: "warn", format: "json", write: (line) => process.stderr.write(line) });
const skewed = (skewMs: number) => ({ nowMs: () => Date.now() + skewMs });

describe("a scale-out server's clock", () => {
  it("refuses to start when it is off from the database's by more than a quarter of the lease", async () => {
    const loaded = loadProject(config().configPath, {});
    const started = createServer(config(), loaded, logger, skewed(-45_000));
    await expect(started).rejects.toBeInstanceOf(ConfigError);
    await expect(started).rejects.toThrow(/clock is 4\d\.\d s behind the database server's .*Baton allows at most 7500 ms \(a quarter of BATON_LEASE_MS, 30000 ms\)/);
  });

  it("starts, and runs graphs, when it is off by less than that", async () => {
    const server = await createServer(config(), loadProject(config().configPath, {}), logger, skewed(2_000));
    try {
      const client = new Client({ apiUrl: server.url });
      const thread = await client.threads.create();
      const out = (await client.runs.wait(thread.thread_id, "echo", { input: human("hi") })) as { messages: { content: string }[] };
      expect(out.messages.at(-1)?.content).toMatch(/hi/);
    } finally {
      await server.close(0);
    }
  });
});
