/** The `baton` command as a user meets it: help, startup failures, and `baton dev` reloading. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, describe, expect, it } from "vitest";
import { executionThreadCount, loadConfig } from "../../src/config.ts";
import { killAll, ROOT, runBaton, type Baton } from "../helpers/process.ts";
import { freshDatabase } from "../helpers/postgres.ts";
import { FIXTURES, until } from "../helpers/server.ts";

// Projects live under the repository so their imports resolve to its node_modules.
mkdirSync(join(ROOT, ".test-projects"), { recursive: true });
const dir = mkdtempSync(join(ROOT, ".test-projects", "cli-"));
afterAll(() => {
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

const graphSource = (reply: string) => `
import { AIMessage } from "@langchain/core/messages";
import { END, MessagesAnnotation, START, StateGraph } from "@langchain/langgraph";
export const graph = new StateGraph(MessagesAnnotation)
  .addNode("reply", () => ({ messages: [new AIMessage(${JSON.stringify(reply)})] }))
  .addEdge(START, "reply")
  .addEdge("reply", END)
  .compile();
`;

function project(name: string, files: Record<string, string>): string {
  const root = join(dir, name);
  mkdirSync(root, { recursive: true });
  for (const [file, text] of Object.entries(files)) writeFileSync(join(root, file), text);
  return join(root, "langgraph.json");
}

/** Processes whose command line holds `text`, with their parent pid (zombies have none, so they do not count). */
function processes(text: string): { pid: number; ppid: number }[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((entry) => {
      try {
        if (!readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(text)) return [];
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
        // After "pid (name) ": state, then the parent's pid.
        return [{ pid: Number(entry), ppid: Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) }];
      } catch {
        return []; // it ended while we looked
      }
    });
}

/** The server processes a `baton dev` parent has (it also runs esbuild, which is not one). */
const serversOf = (parent: Baton) => processes("bin/baton.js").filter((p) => p.ppid === parent.child.pid).map((p) => p.pid);

/** Resolves with what `find` returns once it finds something in baton's stderr; rejects if baton exits first. */
function onStderr<T>(baton: Baton, find: (stderr: string) => T | undefined): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const check = () => {
      const found = find(baton.output().stderr);
      if (found === undefined) return;
      baton.child.stderr!.off("data", check);
      resolve(found);
    };
    // runBaton's own listener comes first, so output() already holds the chunk.
    baton.child.stderr!.on("data", check);
    void baton.exited.then((code) => reject(new Error(`baton exited (${code}); stderr: ${baton.output().stderr}`)));
    check();
  });
}

/** Runs baton to its end; returns the exit code and what it printed. */
async function runToExit(args: string[], env: NodeJS.ProcessEnv = {}) {
  const baton = runBaton(args, { env });
  const code = await baton.exited;
  return { code, ...baton.output() };
}

describe("baton CLI", () => {
  it("prints help", async () => {
    const r = await runToExit(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: baton <command>/);
    expect(r.stdout).toMatch(/--data-dir/);
  });

  it("refuses a split role or Redis without Postgres, and migrate without DATABASE_URL, with one clear message", async () => {
    const role = await runToExit(["serve", "--config", FIXTURES, "--port", "0", "--role", "worker"]);
    expect(role.code).toBe(2);
    expect(role.stderr).toMatch(/--role worker needs DATABASE_URL and REDIS_URL/);
    const redisOnly = await runToExit(["serve", "--config", FIXTURES, "--port", "0"], { REDIS_URL: "redis://127.0.0.1:6379" });
    expect(redisOnly.code).toBe(2);
    expect(redisOnly.stderr).toMatch(/REDIS_URL is set but DATABASE_URL is not/);
    const badRole = await runToExit(["serve", "--config", FIXTURES, "--port", "0", "--role", "boss"]);
    expect(badRole.code).toBe(2);
    expect(badRole.stderr).toMatch(/role/);
    const migrate = await runToExit(["migrate"]);
    expect(migrate.code).toBe(2);
    expect(migrate.stderr).toMatch(/DATABASE_URL is not set/);
  });

  it("refuses execution threads with Postgres, and a thread count that is not a number or auto", async () => {
    const withPostgres = await runToExit(["serve", "--config", FIXTURES, "--port", "0", "--execution-threads", "2"], {
      DATABASE_URL: "postgres://postgres@127.0.0.1:5432/test",
    });
    expect(withPostgres.code).toBe(2);
    expect(withPostgres.stderr).toMatch(/--execution-threads is for embedded SQLite/);
    for (const [bad, said] of [
      ["many", /option executionThreads: a whole number from 0 to 64, or auto/],
      ["1.5", /option executionThreads: a whole number from 0 to 64, or auto/],
      ["65", /option executionThreads: .*<=64/],
    ] as const) {
      const r = await runToExit(["serve", "--config", FIXTURES, "--port", "0", "--execution-threads", bad]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(said);
    }
  });

  it("auto execution threads: one per core but one, at most 4, none with Postgres", () => {
    const embedded = loadConfig({}, {});
    expect([1, 2, 4, 16].map((cores) => executionThreadCount(embedded, cores))).toEqual([0, 1, 3, 4]);
    expect(executionThreadCount(loadConfig({ executionThreads: "0" }, {}), 8)).toBe(0);
    expect(executionThreadCount(loadConfig({}, { BATON_EXECUTION_THREADS: "3" }), 2)).toBe(3);
    expect(executionThreadCount(loadConfig({}, { DATABASE_URL: "postgres://x@h/db" }), 8)).toBe(0);
  });

  it("ends with one clear message when the database cannot be reached", async () => {
    const r = await runToExit(["serve", "--config", FIXTURES, "--port", "0"], { DATABASE_URL: "postgres://postgres@127.0.0.1:1/nowhere" });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ECONNREFUSED|connect/);
  });

  it("ends with one clear message when Redis cannot be reached", async () => {
    const database = await freshDatabase("cli_redis");
    try {
      const r = await runToExit(["serve", "--config", FIXTURES, "--port", "0"], { DATABASE_URL: database.url, REDIS_URL: "redis://127.0.0.1:1" });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/Cannot reach Redis at 127\.0\.0\.1:1 within 5 s\. Check REDIS_URL\./);
    } finally {
      await database.drop();
    }
  });

  it("ends with one clear message when langgraph.json is missing", async () => {
    const r = await runToExit(["serve", "--config", join(dir, "nowhere.json"), "--port", "0"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/No .*nowhere\.json found/);
  });

  it("ends with one clear message when langgraph.json is invalid", async () => {
    const bad = project("invalid", { "langgraph.json": JSON.stringify({ graphs: {} }) });
    const r = await runToExit(["serve", "--config", bad, "--port", "0", "--data-dir", join(dir, "invalid/.baton")]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/graphs: at least one graph is required/);
    const garbled = project("garbled", { "langgraph.json": "{ graphs" });
    const g = await runToExit(["serve", "--config", garbled, "--port", "0", "--data-dir", join(dir, "garbled/.baton")]);
    expect(g.code).not.toBe(0);
    expect(g.stderr).toMatch(/is not valid JSON/);
  });

  it("ends with one clear message when a graph fails to load", async () => {
    const broken = project("broken", {
      "langgraph.json": JSON.stringify({ graphs: { broken: "./graph.ts:graph", missing: "./graph.ts:nothere" } }),
      "graph.ts": "export const graph = (() => { throw new Error('bad import'); })();",
    });
    const r = await runToExit(["serve", "--config", broken, "--port", "0", "--data-dir", join(dir, "broken/.baton")]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Graph 'broken' failed to load .*bad import/);
  });

  it("ends with one clear message when the port is in use", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = await runToExit(["serve", "--config", FIXTURES, "--port", String(port), "--data-dir", join(dir, "port/.baton")]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`Port ${port} on 127.0.0.1 is already in use`));
    } finally {
      blocker.close();
    }
  });

  it("applies the project's env file and uses its custom checkpointer", async () => {
    const root = join(dir, "envsaver");
    const config = project("envsaver", {
      "langgraph.json": JSON.stringify({ graphs: { g: "./graph.ts:graph" }, env: ".env", checkpointer: { path: "./saver.ts:saver" } }),
      ".env": "BATON_TEST_GREETING=hello from .env\n",
      "graph.ts": graphSource("unused").replace(
        'new AIMessage("unused")',
        "new AIMessage(process.env.BATON_TEST_GREETING ?? 'no env')",
      ),
      "saver.ts": `
import { writeFileSync } from "node:fs";
import { MemorySaver } from "@langchain/langgraph";
class MarkingSaver extends MemorySaver {
  override async put(...args: Parameters<MemorySaver["put"]>) {
    writeFileSync(${JSON.stringify(join(root, "saver-used"))}, "yes");
    return super.put(...args);
  }
}
export const saver = new MarkingSaver();
`,
    });
    const baton = runBaton(["serve", "--config", config, "--port", "0", "--data-dir", join(root, ".baton")]);
    const client = new Client({ apiUrl: await baton.url });
    const thread = await client.threads.create();
    const out = (await client.runs.wait(thread.thread_id, "g", { input: { messages: [] } })) as { messages: { content: string }[] };
    expect(out.messages.at(-1)!.content).toBe("hello from .env");
    expect(existsSync(join(root, "saver-used"))).toBe(true);
    // The state is read back through the same saver object that the run wrote
    // to (an in-memory saver is one object: the run executes beside it).
    const state = (await client.threads.getState(thread.thread_id)).values as { messages: { content: string }[] };
    expect(state.messages.map((m) => m.content)).toEqual(["hello from .env"]);
    baton.child.kill("SIGTERM");
    expect(await baton.exited).toBe(0);
  });

  it("baton dev restarts on a change to a graph file, on the same port", async () => {
    const config = project("reload", { "langgraph.json": JSON.stringify({ graphs: { g: "./graph.ts:graph" } }), "graph.ts": graphSource("v1") });
    const baton = runBaton(["dev", "--config", config, "--port", "0", "--data-dir", join(dir, "reload/.baton")]);
    const url = await baton.url;
    const client = new Client({ apiUrl: url });
    const reply = async () => {
      const out = (await client.runs.wait(null, "g", { input: { messages: [] } })) as { messages: { content: string }[] };
      return out.messages.at(-1)!.content;
    };
    expect(await reply()).toBe("v1");
    writeFileSync(join(dir, "reload/graph.ts"), graphSource("v2"));
    // Across processes the reload is a fact to poll for: the same URL answers v2.
    await until(async () => ((await reply().catch(() => "down")) === "v2" ? true : undefined), "the reloaded graph", 20_000);
    expect(baton.output().stderr).toMatch(/graph\.ts changed, reloading/);
    baton.child.kill("SIGTERM");
    expect(await baton.exited).toBe(0);
    // Parent, children and their execution threads all add module hooks: on
    // no supported Node line may that print a warning (src/node-lines.js).
    expect(baton.output().stderr).not.toMatch(/\(node:\d+\) .*Warning/);
  });

  describe("baton dev reloading with one server at a time", () => {
    /**
     * A project whose graph answers what reply.ts exports, beside a file a
     * project also has that the server never imports. Its server takes a
     * second to exit (as one closing connections would), so that changes
     * land while a child is still stopping.
     */
    const reloadProject = (name: string) => {
      const graph = graphSource("unused").replace('new AIMessage("unused")', "new AIMessage(reply)").replace("\nexport", '\nimport { reply } from "./reply.ts";\nexport');
      const config = project(name, {
        "langgraph.json": JSON.stringify({ graphs: { g: "./graph.ts:graph" } }),
        "graph.ts": `${graph}process.on("exit", () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000));\n`,
        "reply.ts": 'export const reply = "v1";\n',
        "package.json": JSON.stringify({ name, private: true }),
      });
      return { config, root: join(dir, name) };
    };
    const replyOf = async (url: string) => {
      const out = (await new Client({ apiUrl: url }).runs.wait(null, "g", { input: { messages: [] } })) as { messages: { content: string }[] };
      return out.messages.at(-1)!.content;
    };
    const changes = (stderr: string) => stderr.match(/^baton dev: \S+ changed.*$/gm) ?? [];

    it("rapid changes end with exactly one serving child, and files the server never imports do not reload it", async () => {
      const { config, root } = reloadProject("race");
      const baton = runBaton(["dev", "--config", config, "--port", "0", "--data-dir", join(root, ".baton")]);
      const url = await baton.url;
      // Files a project holds that no module imports: the manifest, the lock
      // file, a script run against the server. Nothing can be awaited for a
      // change that is ignored, so the test waits out the 150 ms debounce
      // (with margin) before the change that does reload, which would
      // otherwise swallow theirs in the same quiet period.
      writeFileSync(join(root, "package.json"), JSON.stringify({ name: "race", private: true, version: "1.0.1" }));
      writeFileSync(join(root, "package-lock.json"), "{}");
      writeFileSync(join(root, "client.mjs"), "console.log('a script of the user');\n");
      await new Promise((r) => setTimeout(r, 500));
      // Each change is seen before the next is made, so the debounce merges
      // none of them: they land while a child stops, starts or serves.
      const versions = ["v2", "v3", "v4", "v5"];
      for (const [i, version] of versions.entries()) {
        writeFileSync(join(root, "reply.ts"), `export const reply = "${version}";\n`);
        await onStderr(baton, (stderr) => (changes(stderr).length > i ? true : undefined));
      }
      // The server up after the last change is the one left.
      const pid = await onStderr(baton, (stderr) => /reloaded \(server pid (\d+)\)/.exec(stderr.slice(stderr.lastIndexOf(changes(stderr).at(-1)!)))?.[1]);
      expect(serversOf(baton)).toEqual([Number(pid)]);
      expect(await replyOf(url)).toBe("v5");
      const { stderr } = baton.output();
      expect(changes(stderr), stderr).toHaveLength(versions.length);
      expect(changes(stderr).every((line) => line.startsWith("baton dev: reply.ts changed"))).toBe(true);
      expect(stderr).not.toMatch(/in use by process/);
      baton.child.kill("SIGTERM");
      expect(await baton.exited).toBe(0);
      expect(processes(root)).toEqual([]);
    }, 180_000);

    it("SIGTERM to the parent while a new child starts stops that child too", async () => {
      const { config, root } = reloadProject("stop-while-starting");
      const baton = runBaton(["dev", "--config", config, "--port", "0", "--data-dir", join(root, ".baton")]);
      await baton.url;
      const [first] = serversOf(baton);
      writeFileSync(join(root, "reply.ts"), 'export const reply = "v2";\n');
      await onStderr(baton, (stderr) => (changes(stderr).length > 0 ? true : undefined));
      // A process appearing is a fact to poll for; a child takes seconds to start, so it is caught starting.
      await until(async () => (serversOf(baton).some((pid) => pid !== first) ? true : undefined), "the new child", 20_000);
      baton.child.kill("SIGTERM");
      expect(await baton.exited).toBe(0);
      expect(baton.output().stdout.match(/listening on/g)).toHaveLength(1);
      expect(processes(root)).toEqual([]);
    }, 120_000);
  });
});
