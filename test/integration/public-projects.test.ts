/**
 * Shapes of public LangGraph.js projects served unchanged, each reduced to a
 * small project that reproduces what went wrong when the real one was tried
 * (none of their code is copied here, and tests use no network). The small
 * projects are written at test time under .test-projects/: they need their
 * own node_modules, which git does not keep.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { killAll, ROOT, runBaton } from "../helpers/process.ts";

afterAll(() => killAll());

/**
 * The 2024 templates (new-langgraphjs-project, react-agent-js, ...) pin
 * @langchain/langgraph 0.2 in their lockfiles. Such a release lacks exports
 * Baton's own modules import (`Command`, among others): the start must still
 * end with the refusal that names the package, not a link error from Baton's
 * code. The project's copy is made at test time (node_modules is not
 * committed): a module with only a 0.2-era export.
 */
describe("a project on a LangGraph release without Baton's imports", () => {
  mkdirSync(join(ROOT, ".test-projects"), { recursive: true });
  const project = mkdtempSync(join(ROOT, ".test-projects", "langgraph-0.2-"));
  beforeAll(() => {
    const pkg = join(project, "node_modules/@langchain/langgraph");
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "@langchain/langgraph", version: "0.2.5", type: "module", exports: { ".": "./index.js" } }));
    writeFileSync(join(pkg, "index.js"), "export class StateGraph {}\n");
    writeFileSync(join(project, "graph.ts"), 'import { StateGraph } from "@langchain/langgraph";\nexport const graph = new StateGraph();\n');
    writeFileSync(join(project, "langgraph.json"), JSON.stringify({ graphs: { agent: "./graph.ts:graph" } }));
  });
  afterAll(() => rmSync(project, { recursive: true, force: true }));

  it.each(["serve", "dev"])("`baton %s` refuses it naming package, version and range", async (command) => {
    const baton = runBaton([command, "--config", join(project, "langgraph.json"), "--port", "0", "--no-reload", "--data-dir", join(project, ".baton")]);
    expect(await baton.exited).toBe(1);
    const { stderr } = baton.output();
    expect(stderr).not.toMatch(/SyntaxError|does not provide an export/);
    expect(stderr).toMatch(/@langchain\/langgraph 0\.2\.5 \(at .*langgraph-0\.2-.*\) is not supported: Baton needs >=1\.0\.0 <2\.0\.0/);
  });

  it("`baton --help` still prints the usage from the project's folder", async () => {
    const baton = runBaton(["--help"], { cwd: project });
    expect(await baton.exited).toBe(0);
    expect(baton.output().stdout).toMatch(/^Usage: baton/);
  });
});

/**
 * memory-agent-js's lockfile pins zod 3.23, which has no `zod/v4`; upgraded
 * to LangGraph 1.x without zod, the project's @langchain/langgraph fails to
 * load when Baton's own modules import it. The start must end with one line
 * naming the project's copies and the cause, not Node's uncaught stack.
 */
describe("a project whose own LangGraph copy does not load", () => {
  mkdirSync(join(ROOT, ".test-projects"), { recursive: true });
  const project = mkdtempSync(join(ROOT, ".test-projects", "broken-langgraph-"));
  beforeAll(() => {
    const pkg = join(project, "node_modules/@langchain/langgraph");
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "@langchain/langgraph", version: "1.7.3", type: "module", exports: { ".": "./index.js" } }));
    writeFileSync(join(pkg, "index.js"), 'export * from "zod-missing-in-this-project/v4";\n');
    writeFileSync(join(project, "graph.ts"), "export const graph = {};\n");
    writeFileSync(join(project, "langgraph.json"), JSON.stringify({ graphs: { agent: "./graph.ts:graph" } }));
  });
  afterAll(() => rmSync(project, { recursive: true, force: true }));

  it("`baton dev` says which copy failed and why, in one line", async () => {
    const baton = runBaton(["dev", "--config", join(project, "langgraph.json"), "--port", "0", "--no-reload", "--data-dir", join(project, ".baton")]);
    expect(await baton.exited).toBe(1);
    const { stderr } = baton.output();
    expect(stderr).not.toMatch(/triggerUncaughtException|^\s+at /m);
    expect(stderr).toMatch(/^baton: the project's LangChain packages did not load \(.*@langchain\/langgraph 1\.7\.3 at .*broken-langgraph-.*\): .*zod-missing-in-this-project.*npm ls/m);
  });
});

/**
 * memory-agent-js under langchain 1.x calls `initChatModel()` at import with
 * no model, which throws a TypeError inside langchain. The dev server prints
 * the stack; Baton's one line must still say where: the frame that threw and
 * the line of the project's own file that led there.
 */
describe("a graph file that throws at import, inside a library", () => {
  mkdirSync(join(ROOT, ".test-projects"), { recursive: true });
  const project = mkdtempSync(join(ROOT, ".test-projects", "throws-at-import-"));
  beforeAll(() => {
    const lib = join(project, "node_modules/chat-lib");
    mkdirSync(lib, { recursive: true });
    writeFileSync(join(lib, "package.json"), JSON.stringify({ name: "chat-lib", version: "1.0.0", type: "module", exports: { ".": "./index.js" } }));
    writeFileSync(join(lib, "index.js"), "export function initModel(name) {\n  return name.startsWith('openai:');\n}\n");
    mkdirSync(join(project, "src"));
    writeFileSync(join(project, "src/graph.ts"), 'import { initModel } from "chat-lib";\n\nexport const model = initModel(undefined);\nexport const graph = {};\n');
    writeFileSync(join(project, "langgraph.json"), JSON.stringify({ graphs: { agent: "./src/graph.ts:graph" } }));
    writeFileSync(join(project, "src/missing.ts"), 'export { graph } from "not-installed-here";\n');
    writeFileSync(join(project, "missing.json"), JSON.stringify({ graphs: { agent: "./src/missing.ts:graph" } }));
  });
  afterAll(() => rmSync(project, { recursive: true, force: true }));

  it("`baton dev` names the library frame and the project's line", async () => {
    const baton = runBaton(["dev", "--config", join(project, "langgraph.json"), "--port", "0", "--no-reload", "--data-dir", join(project, ".baton")]);
    expect(await baton.exited).toBe(1);
    expect(baton.output().stderr).toMatch(
      /^baton: Graph 'agent' failed to load from .*src\/graph\.ts: Cannot read properties of undefined \(reading 'startsWith'\) \(thrown at node_modules\/chat-lib\/index\.js:2:\d+, from src\/graph\.ts:3:\d+\)$/m,
    );
  });

  it("a package the project lacks: the message names it, no frame of Node's own resolver", async () => {
    const baton = runBaton(["dev", "--config", join(project, "missing.json"), "--port", "0", "--no-reload", "--data-dir", join(project, ".baton")]);
    expect(await baton.exited).toBe(1);
    expect(baton.output().stderr).toMatch(/^baton: Graph 'agent' failed to load from .*src\/missing\.ts: Cannot find package 'not-installed-here' imported from .*src\/missing\.ts$/m);
  });
});
