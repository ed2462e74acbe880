/**
 * Loading projects as the official loader does: every export form
 * (createAgent and createDeepAgent wrappers, Promises, object graph
 * entries), the globals a project's code may use at import (getLogger, a
 * URL-less SDK Client), LANGGRAPH_CONFIG, a missing .env file, every key of
 * the official langgraph.json schema, PORT, and the project's own copies of
 * the LangChain packages.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, loadProject } from "../../src/config.ts";
import { systemAssistantId } from "../../src/core/assistants.ts";
import { createLogger, createServer, type BatonServer } from "../../src/server.ts";
import { killAll, ROOT, runBaton } from "../helpers/process.ts";
import { human } from "../helpers/server.ts";

const PROJECTS = join(import.meta.dirname, "../fixtures/projects");
const LOADING = join(PROJECTS, "loading/langgraph.json");
const CLIENT_PREFIX = join(import.meta.dirname, "../fixtures/client-prefix/langgraph.json");

type Line = { level: string; msg: string } & Record<string, unknown>;
type Out = { messages: { content: unknown }[] };
const lastText = (out: unknown) => (out as Out).messages.at(-1)!.content;

/** A real server on port 0 whose log lines the test reads. */
async function start(configPath: string, options: { executionThreads: number; env?: NodeJS.ProcessEnv }) {
  const lines: Line[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), "baton-loading-"));
  const config = loadConfig({ port: 0, dataDir, configPath, shutdownGraceMs: 0, executionThreads: options.executionThreads }, {});
  const logger = createLogger({ level: "debug", format: "json", write: (line) => lines.push(JSON.parse(line) as Line) });
  const server: BatonServer = await createServer(config, loadProject(configPath, { ...options.env }), logger);
  return {
    server,
    lines,
    client: new Client({ apiUrl: server.url }),
    async close() {
      await server.close(0);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

afterAll(() => killAll());

// The HTTP thread first: the fixture module is imported once per process (then cached).
describe.each([
  { where: "on the HTTP thread", executionThreads: 0 },
  { where: "in an execution thread", executionThreads: 1 },
])("every export form loads and runs, $where", ({ executionThreads }) => {
  let t: Awaited<ReturnType<typeof start>>;
  const langgraphConfig = { defaults: { configurable: { model: "fake-1" }, context: { tone: "dry" }, recursion_limit: 7 } };
  beforeAll(async () => {
    t = await start(LOADING, { executionThreads, env: { LANGGRAPH_CONFIG: JSON.stringify(langgraphConfig) } });
  }, 60_000);
  afterAll(() => t?.close());

  const answer = async (assistant: string, config?: Record<string, unknown>) => {
    const thread = await t.client.threads.create();
    return lastText(await t.client.runs.wait(thread.thread_id, assistant, { input: human("hi"), ...(config ? { config } : {}) }));
  };

  it("serves createAgent and createDeepAgent exports, under graph ids with spaces and parentheses", async () => {
    expect(await answer("Research agent (v1)")).toBe("agent says hi");
    expect(await answer("deep agent")).toBe("deep agent says hi");
    expect(await answer("agentFactory")).toBe("factory agent says hi");
    const assistant = await t.client.assistants.get("Research agent (v1)");
    expect(assistant).toMatchObject({ assistant_id: systemAssistantId("Research agent (v1)"), graph_id: "Research agent (v1)" });
    const graph = await t.client.assistants.getGraph("Research agent (v1)");
    expect(Object.keys((graph as { nodes: unknown[] }).nodes).length).toBeGreaterThan(0);
  });

  it("awaits exported Promises of a compiled graph, a StateGraph and a factory", async () => {
    expect(await answer("promisedGraph")).toBe("from a promised graph");
    expect(await answer("promisedBuilder")).toBe("from a promised StateGraph");
    expect(await answer("promisedFactory", { configurable: { who: "ada" } })).toBe("from a promised factory for ada");
  });

  it("takes a graph entry's description for its system assistant", async () => {
    expect(await t.client.assistants.get(systemAssistantId("described"))).toMatchObject({ description: "Answers from a promised graph." });
    expect(await t.client.assistants.get(systemAssistantId("promisedGraph"))).toMatchObject({ description: null });
    expect(await answer("described")).toBe("from a promised graph");
  });

  it("gives system assistants their defaults from LANGGRAPH_CONFIG", async () => {
    const assistant = await t.client.assistants.get(systemAssistantId("defaults"));
    expect(assistant.config).toMatchObject({ configurable: { model: "fake-1" }, recursion_limit: 7 });
    expect(assistant.context).toEqual({ tone: "dry" });
    expect(await answer("defaults")).toBe("model=fake-1 tone=dry");
  });

  it("lets graph modules log through Baton's logger, and call this server with a URL-less Client", async () => {
    expect(await answer("usesServer")).toBe("server has 1 assistant(s) for usesServer");
    // Logged at import, on the thread that imported it (an execution thread's lines carry its index).
    const imported = t.lines.find((l) => l.msg === "fixture:imported" && (executionThreads === 0 ? l.thread === undefined : l.thread === 0));
    expect(imported).toMatchObject({ level: "info", source: "graph", module: "agents.ts" });
    expect(t.lines.find((l) => l.msg === "fixture:asking-server")).toMatchObject({ level: "warn", via: "new Client()", langgraph_node: "ask" });
  });

  it("logs the build-only keys it ignores and warns of a missing .env file instead of failing", () => {
    expect(t.lines.find((l) => l.msg === "project:build-keys-ignored")).toMatchObject({ level: "info", keys: ["node_version", "dependencies", "dockerfile_lines"] });
    expect(t.lines.find((l) => l.msg === "project:env-file-missing")).toMatchObject({ level: "warn", path: join(PROJECTS, "loading/.env.not-there") });
  });
});

describe.each([
  { where: "on the HTTP thread", executionThreads: 0 },
  { where: "in an execution thread", executionThreads: 1 },
])("a URL-less Client under http.mount_prefix, graphs $where", ({ executionThreads }) => {
  it("reaches the API under the prefix, from a graph and from http.app", async () => {
    const t = await start(CLIENT_PREFIX, { executionThreads });
    try {
      const client = new Client({ apiUrl: `${t.server.url}/api/v1` });
      const thread = await client.threads.create();
      expect(lastText(await client.runs.wait(thread.thread_id, "caller", { input: human("hi") }))).toBe("server has 1 assistant(s) for caller");
      // http.app always runs on the HTTP thread: its client goes through the in-process fetch.
      const response = await fetch(`${t.server.url}/api/v1/graph-ids`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual(["caller"]);
    } finally {
      await t.close();
    }
  });
});

describe("langgraph.json keys", () => {
  const dir = mkdtempSync(join(tmpdir(), "baton-keys-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const project = (json: Record<string, unknown>) => {
    const path = join(dir, `${crypto.randomUUID()}.json`);
    writeFileSync(path, JSON.stringify({ graphs: { g: "./g.ts:graph" }, ...json }));
    return path;
  };

  it("refuses keys Baton cannot honour, naming each", () => {
    const refusals: [Record<string, unknown>, RegExp][] = [
      [{ auth: { path: "./auth.ts:auth", cache: { ttl_seconds: 60 } } }, /auth.*cache/s],
      [{ auth: { disable_studio_auth: true } }, /auth\.path/],
      [{ store: { index: { embed: "./embed.ts:embed" } } }, /store\.index\.dims/],
      [{ store: { ttl: { default_ttl: -5 } } }, /store\.ttl\.default_ttl/],
      [{ checkpointer: { ttl: { default_ttl: 5, sweep_limit: 0 } } }, /checkpointer\.ttl\.sweep_limit/],
      [{ checkpointer: { ttl: { default_ttl: 5, batch: 10 } } }, /checkpointer\.ttl.*batch/],
      [{ encryption: { path: "./e.ts:e" } }, /'encryption'/],
      [{ webhooks: { env_prefix: "X_" } }, /'webhooks'/],
      [{ env: ["SECRET"] }, /'env' as a list/],
    ];
    for (const [json, message] of refusals) {
      expect(() => loadProject(project(json), {})).toThrow(ConfigError);
      expect(() => loadProject(project(json), {})).toThrow(message);
    }
    // `null` is "not set" in the official schema.
    expect(loadProject(project({ auth: null, store: { index: null } }), {}).notes).toEqual([]);
  });

  it("notes build-only keys, Python-only serde and unknown keys", () => {
    const loaded = loadProject(project({ python_version: "3.12", base_image: "x", checkpointer: { serde: { pickle_fallback: false } }, graph: {}, store: { idx: 1 } }), {});
    expect(loaded.notes).toEqual([
      expect.objectContaining({ level: "info", msg: "project:build-keys-ignored", fields: expect.objectContaining({ keys: ["python_version", "base_image"] }) }),
      expect.objectContaining({ level: "info", msg: "project:key-ignored", fields: expect.objectContaining({ key: "checkpointer.serde" }) }),
      expect.objectContaining({ level: "warn", msg: "project:unknown-keys", fields: expect.objectContaining({ keys: ["graph", "store.idx"] }) }),
    ]);
  });

  it("warns when node_version names another Node line than the one running, and says nothing when it is this one", () => {
    const major = process.versions.node.split(".")[0]!;
    const other = major === "22" ? "24" : "22";
    expect(loadProject(project({ node_version: major }), {}).notes.filter((n) => n.level === "warn")).toEqual([]);
    expect(loadProject(project({ node_version: other }), {}).notes).toContainEqual(
      expect.objectContaining({ level: "warn", msg: "project:node-version-differs", fields: expect.objectContaining({ node_version: other, running: process.version }) }),
    );
  });

  it("reads LANGGRAPH_CONFIG from langgraph.json's env too, and refuses one that is not per-graph objects", () => {
    const config = { g: { configurable: { a: 1 }, context: { b: 2 } }, other: {} };
    const loaded = loadProject(project({ env: { LANGGRAPH_CONFIG: JSON.stringify(config) } }), {});
    expect(loaded.graphDefaults.g).toEqual({ config: { configurable: { a: 1 } }, context: { b: 2 } });
    expect(loaded.notes).toEqual([expect.objectContaining({ level: "warn", msg: "project:langgraph-config-unknown-graphs", fields: expect.objectContaining({ graphs: ["other"] }) })]);
    expect(() => loadProject(project({}), { LANGGRAPH_CONFIG: "{nope" })).toThrow(/LANGGRAPH_CONFIG is not valid JSON/);
    expect(() => loadProject(project({}), { LANGGRAPH_CONFIG: '{"g": 1}' })).toThrow(/LANGGRAPH_CONFIG must be an object of graph ids to objects/);
    expect(() => loadProject(project({}), { LANGGRAPH_CONFIG: '{"g": {"context": 1}}' })).toThrow(/'g\.context' must be an object/);
  });

  it("takes the object form of a graph entry", () => {
    const loaded = loadProject(project({ graphs: { a: { path: "./a.ts:graph", description: "A." }, b: "./b.ts:graph" } }), {});
    expect(loaded.project.graphs).toEqual({ a: "./a.ts:graph", b: "./b.ts:graph" });
    expect(loaded.graphs).toEqual([
      { graphId: "a", spec: "./a.ts:graph", description: "A." },
      { graphId: "b", spec: "./b.ts:graph", description: null },
    ]);
  });

  it("honours PORT below BATON_PORT and --port", () => {
    expect(loadConfig({}, { PORT: "9001" }).port).toBe(9001);
    expect(loadConfig({}, { PORT: "9001", BATON_PORT: "9002" }).port).toBe(9002);
    expect(loadConfig({ port: "9003" }, { PORT: "9001", BATON_PORT: "9002" }).port).toBe(9003);
  });
});

/**
 * The project's own copies of the LangChain packages. The registry is not
 * reachable from tests, so the project's copies are real copies of Baton's
 * installed packages, made at test time: a second copy of each on disk, as
 * a project with its own node_modules has.
 */
describe("a project with its own LangChain packages", () => {
  const shared = ["core", "langgraph", "langgraph-checkpoint"];
  const ownCopies = join(PROJECTS, "own-copies");
  mkdirSync(join(ROOT, ".test-projects"), { recursive: true });
  const oldProject = mkdtempSync(join(ROOT, ".test-projects", "old-langgraph-"));
  beforeAll(() => {
    for (const name of shared) cpSync(join(ROOT, "node_modules/@langchain", name), join(ownCopies, "node_modules/@langchain", name), { recursive: true });
    // A release Baton does not support: the copy's version field says 0.2.74, as
    // such a release's would (the registry is not reachable to fetch a real one).
    const copy = join(oldProject, "node_modules/@langchain/langgraph");
    cpSync(join(ROOT, "node_modules/@langchain/langgraph"), copy, { recursive: true });
    const pkg = JSON.parse(readFileSync(join(copy, "package.json"), "utf8")) as { version: string };
    writeFileSync(join(copy, "package.json"), JSON.stringify({ ...pkg, version: "0.2.74" }));
    cpSync(join(ownCopies, "chat.ts"), join(oldProject, "chat.ts"));
    cpSync(join(ownCopies, "langgraph.json"), join(oldProject, "langgraph.json"));
  });
  afterAll(() => {
    rmSync(join(ownCopies, "node_modules"), { recursive: true, force: true });
    rmSync(oldProject, { recursive: true, force: true });
  });

  it.each([1, 0])("streams chunks as messages/partial through one copy (execution threads: %i)", async (threads) => {
    const dataDir = mkdtempSync(join(tmpdir(), "baton-copies-"));
    const baton = runBaton(["dev", "--config", join(ownCopies, "langgraph.json"), "--port", "0", "--no-reload", "--data-dir", dataDir, "--execution-threads", String(threads), "--log-level", "debug"]);
    try {
      const client = new Client({ apiUrl: await baton.url });
      const thread = await client.threads.create();
      const counts: Record<string, number> = {};
      for await (const part of client.runs.stream(thread.thread_id, "chat", { input: human("hi"), streamMode: ["messages"] })) {
        counts[part.event] = (counts[part.event] ?? 0) + 1;
      }
      // Token by token: one partial per character, then one complete per
      // message of the state (question, answer). With two copies of
      // @langchain/core, Baton's chunk check fails and every chunk is "complete".
      expect(counts["messages/partial"]).toBeGreaterThan(10);
      expect(counts["messages/complete"] ?? 0).toBeLessThanOrEqual(2);
      // Every shared package was loaded from the project's folder.
      const { stderr } = baton.output();
      for (const name of shared) {
        expect(stderr).toMatch(new RegExp(`@langchain/${name}=\\{[^}]*"from":"project","dir":"${join(ownCopies, "node_modules/@langchain", name)}"`));
      }
    } finally {
      baton.child.kill("SIGTERM");
      await baton.exited;
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("refuses at start a LangGraph release Baton does not support, naming package, version and range", async () => {
    const baton = runBaton(["serve", "--config", join(oldProject, "langgraph.json"), "--port", "0", "--data-dir", join(oldProject, ".baton")]);
    expect(await baton.exited).toBe(1);
    expect(baton.output().stderr).toMatch(/@langchain\/langgraph 0\.2\.74 \(at .*old-langgraph-.*\) is not supported: Baton needs >=1\.0\.0 <2\.0\.0/);
  });
});
