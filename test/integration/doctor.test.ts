/** `baton doctor` as a user runs it: a child process against a good project and broken ones; its lines and exit code. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { killAll, ROOT, runBaton } from "../helpers/process.ts";
import { freshDatabase } from "../helpers/postgres.ts";
import { REDIS_URL } from "../helpers/server.ts";

// Projects live under the repository so their imports resolve to its node_modules.
mkdirSync(join(ROOT, ".test-projects"), { recursive: true });
const dir = mkdtempSync(join(ROOT, ".test-projects", "doctor-"));
const dataDir = mkdtempSync(join(tmpdir(), "baton-doctor-"));
afterAll(() => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});

const GRAPH = `
import { AIMessage } from "@langchain/core/messages";
import { END, MessagesAnnotation, START, StateGraph } from "@langchain/langgraph";
export const graph = new StateGraph(MessagesAnnotation)
  .addNode("reply", () => ({ messages: [new AIMessage("hi")] }))
  .addEdge(START, "reply")
  .addEdge("reply", END)
  .compile();
`;

function project(name: string, langgraph: Record<string, unknown>, files: Record<string, string> = { "graph.ts": GRAPH }): string {
  const root = join(dir, name);
  mkdirSync(root, { recursive: true });
  for (const [file, text] of Object.entries(files)) writeFileSync(join(root, file), text);
  writeFileSync(join(root, "langgraph.json"), JSON.stringify(langgraph));
  return join(root, "langgraph.json");
}

const good = project("good", { graphs: { agent: "./graph.ts:graph" } });

/** Holds a port for the test (so the doctor finds it taken), on 127.0.0.1. */
async function holdPort(): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

/** A port free now (bound and released), for a check that must find it free. */
async function freePort(): Promise<number> {
  const server = await holdPort();
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function doctor(args: string[], env: NodeJS.ProcessEnv = {}) {
  const baton = runBaton(["doctor", "--data-dir", dataDir, ...args], { env });
  const code = await baton.exited;
  const { stdout } = baton.output();
  const lines = stdout.trim().split("\n");
  return { code, lines, problems: lines.filter((line) => line.startsWith("problem: ")), stdout };
}

describe("baton doctor", () => {
  it("passes a good project: a line per check, exit 0", async () => {
    const { code, lines, problems } = await doctor(["--config", good, "--port", String(await freePort())]);
    expect(problems).toEqual([]);
    expect(lines).toContain("ok: graph agent: ./graph.ts:graph loads");
    expect(lines).toContain("ok: store: no store.index (a search's query is a text match); item TTLs: default none, refreshed on read, swept every 60 min");
    expect(lines.some((line) => /^ok: database: SQLite .* (does not exist yet|answers)/.test(line))).toBe(true);
    expect(lines.some((line) => /^ok: port: \d+ on 127\.0\.0\.1 is free$/.test(line))).toBe(true);
    expect(lines.at(-1)).toBe("baton doctor: all checks passed.");
    expect(code).toBe(0);
  });

  it("names a graph whose export is missing, with the fix", async () => {
    const config = project("missing-export", { graphs: { agent: "./graph.ts:graph", other: "./graph.ts:nope" } });
    const { code, lines, problems } = await doctor(["--config", config, "--port", "0"]);
    expect(lines).toContain("ok: graph agent: ./graph.ts:graph loads");
    expect(lines).toContain("ok: store: no store.index (a search's query is a text match); item TTLs: default none, refreshed on read, swept every 60 min");
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^problem: graph other: .*nope.* Fix: make \.\/graph\.ts:nope .* export the graph, or correct graphs\.other in langgraph\.json\.$/);
    expect(lines.at(-1)).toBe("baton doctor: 1 problem(s).");
    expect(code).toBe(1);
  });

  it("names an unreachable database URL and an unreachable Redis", async () => {
    const held = await holdPort();
    const { port } = held.address() as AddressInfo;
    // Nothing speaks Postgres or Redis there: a plain TCP listener that answers nothing would hang; closed, it refuses.
    await new Promise((resolve) => held.close(resolve));
    const { code, problems } = await doctor(["--config", good, "--port", "0"], { DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/baton`, REDIS_URL: `redis://127.0.0.1:${port}` });
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(new RegExp(`^problem: database: Postgres does not answer: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\. Fix: check DATABASE_URL`));
    expect(problems[1]).toMatch(new RegExp(`^problem: redis: Cannot reach Redis at 127\\.0\\.0\\.1:${port} .* Fix: check REDIS_URL`));
    expect(code).toBe(1);
  });

  it("says a fresh Postgres database would be migrated at start, and is a problem when migrations are off", async () => {
    const database = await freshDatabase("doctor");
    try {
      const env = { DATABASE_URL: database.url, REDIS_URL };
      const migrating = await doctor(["--config", good, "--port", "0"], env);
      expect(migrating.problems).toEqual([]);
      expect(migrating.lines.some((line) => /^ok: database: Postgres .* schema version 0, migrations 1 to \d+ would be applied at start$/.test(line))).toBe(true);
      expect(migrating.lines).toContain("ok: redis: answers");
      expect(migrating.code).toBe(0);

      const off = await doctor(["--config", good, "--port", "0"], { ...env, BATON_MIGRATE: "false" });
      expect(off.problems).toHaveLength(1);
      expect(off.problems[0]).toMatch(/^problem: database: .* schema version 0, this Baton needs \d+, and BATON_MIGRATE is off\. Fix: run 'baton migrate'/);
      expect(off.code).toBe(1);

      const migrate = runBaton(["migrate"], { env });
      expect(await migrate.exited).toBe(0);
      const current = await doctor(["--config", good, "--port", "0"], { ...env, BATON_MIGRATE: "false" });
      expect(current.lines.some((line) => /^ok: database: Postgres .* answers; schema version \d+ is current$/.test(line))).toBe(true);
      // pgvector is looked for and reported with the search setting (the doctor installs nothing).
      expect(current.lines.some((line) => /^ok: database: Postgres .*\(pgvector (installed|available|absent); storeVectorSearch auto\) answers/.test(line))).toBe(true);
      expect(current.code).toBe(0);
    } finally {
      await database.drop();
    }
  });

  it("says which store search a store.index gives, and names an embedding provider that is not installed", async () => {
    const indexed = project("store-index", {
      graphs: { agent: "./graph.ts:graph" },
      store: { index: { embed: "./embed.ts:embed", dims: 2, fields: ["text"] }, ttl: { default_ttl: 30, refresh_on_read: false } },
    }, { "graph.ts": GRAPH, "embed.ts": "export const embed = async (texts: string[]) => texts.map((t) => [t.length, 1]);\n" });
    const ok = await doctor(["--config", indexed, "--port", "0"]);
    expect(ok.problems).toEqual([]);
    expect(ok.lines).toContain("ok: store: semantic search (cosine similarity) with ./embed.ts:embed, 2 dims, fields text; item TTLs: default 30 min, not refreshed on read, swept every 60 min");
    const provider = project("store-provider", { graphs: { agent: "./graph.ts:graph" }, store: { index: { embed: "cohere:embed-english-v3.0", dims: 1024 } } });
    const missing = await doctor(["--config", provider, "--port", "0"]);
    expect(missing.code).toBe(1);
    expect(missing.problems).toEqual([expect.stringMatching(/^problem: store: .*needs the LangChain integration @langchain\/cohere.*npm install @langchain\/cohere.*Fix: correct store\.index/)]);
  });

  it("names a port in use", async () => {
    const held = await holdPort();
    try {
      const { port } = held.address() as AddressInfo;
      const { code, problems } = await doctor(["--config", good, "--port", String(port)]);
      expect(problems).toEqual([`problem: port: ${port} on 127.0.0.1 is already in use by another process. Fix: stop that process, or pass another --port (BATON_PORT) (0 picks a free one).`]);
      expect(code).toBe(1);

      // The metrics listener's port too, and the same port for both.
      const metrics = await doctor(["--config", good, "--port", "0"], { BATON_METRICS_PORT: String(port) });
      expect(metrics.problems).toEqual([`problem: metricsPort: ${port} on 127.0.0.1 is already in use by another process. Fix: stop that process, or pass another BATON_METRICS_PORT (0 picks a free one).`]);
      expect(metrics.code).toBe(1);
      const free = String(await freePort());
      const same = await doctor(["--config", good, "--port", free], { BATON_METRICS_PORT: free });
      expect(same.problems).toEqual([`problem: metricsPort: ${free} is also the main port. Fix: set BATON_METRICS_PORT to another port, or unset it to serve /metrics on the main port.`]);
      expect(same.code).toBe(1);
    } finally {
      await new Promise((resolve) => held.close(resolve));
    }
  });

  it("names an auth.path that does not load, and no authentication off loopback", async () => {
    const config = project("bad-auth", { graphs: { agent: "./graph.ts:graph" }, auth: { path: "./missing-auth.ts:auth" } });
    const bad = await doctor(["--config", config, "--port", "0"]);
    expect(bad.problems).toHaveLength(1);
    expect(bad.problems[0]).toMatch(/^problem: auth: langgraph\.json auth\.path '\.\/missing-auth\.ts:auth' could not be loaded: .* Fix: see docs\/auth\.md/);
    expect(bad.code).toBe(1);

    const open = await doctor(["--config", good, "--port", "0", "--host", "0.0.0.0"]);
    expect(open.problems).toHaveLength(1);
    expect(open.problems[0]).toMatch(/^problem: auth: Baton would listen on 0\.0\.0\.0 with no authentication/);
    expect(open.code).toBe(1);

    const keys = await doctor(["--config", good, "--port", "0"], { BATON_API_KEYS: "short" });
    expect(keys.problems).toHaveLength(1);
    expect(keys.problems[0]).toMatch(/^problem: auth: BATON_API_KEYS entry 1 .* has a key of 5 characters; use at least 16/);
    expect(keys.code).toBe(1);
  });

  it("reports a configuration that does not parse, and an invalid langgraph.json", async () => {
    const option = await doctor(["--config", good, "--port", "not-a-port"]);
    expect(option.lines[0]).toMatch(/^problem: config: option port: .* Fix: correct the option named/);
    expect(option.code).toBe(1);

    const config = project("invalid", { graph: { agent: "./graph.ts:graph" } });
    const invalid = await doctor(["--config", config, "--port", "0"]);
    expect(invalid.problems[0]).toMatch(/^problem: config: .*langgraph\.json is invalid: graphs: .* Fix: correct langgraph\.json/);
    expect(invalid.code).toBe(1);
  });
});
