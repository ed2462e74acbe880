/**
 * The project-resolution hook in a real Node process: after it is added,
 * `import "@langchain/core"` anywhere loads the project's copy, and a
 * CommonJS `require()` that fails elsewhere first (an optional dependency
 * probed in a try/catch) does not change that. On lines with in-thread
 * hooks (22.15+, 24, 26) such a require reaches the hook, which once took
 * its failure for the project's and remembered the package as missing.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, expect, it } from "vitest";

const root = mkdtempSync(join(tmpdir(), "baton-resolve-hook-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A stand-in @langchain/core under `dir` that says whose copy it is. */
function fakeCore(dir: string, who: string): void {
  const pkg = join(dir, "node_modules/@langchain/core");
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "@langchain/core", version: "1.0.0", exports: { ".": { import: "./index.mjs", require: "./index.cjs" } } }));
  writeFileSync(join(pkg, "index.mjs"), `export const who = ${JSON.stringify(who)};\n`);
  writeFileSync(join(pkg, "index.cjs"), `module.exports = { who: ${JSON.stringify(who)} };\n`);
}

it("keeps the project's copy for imports after a require that fails elsewhere, and leaves requires to Node", () => {
  fakeCore(join(root, "project"), "project");
  fakeCore(join(root, "app"), "app");
  mkdirSync(join(root, "elsewhere"));
  const register = pathToFileURL(join(import.meta.dirname, "register.js")).href;
  const main = join(root, "app", "main.mjs");
  writeFileSync(
    main,
    `import { createRequire } from "node:module";
import { registerProjectResolution } from ${JSON.stringify(register)};
registerProjectResolution(${JSON.stringify(join(root, "project"))});
let probe = "found";
try { createRequire(${JSON.stringify(join(root, "elsewhere", "probe.cjs"))})("@langchain/core"); } catch { probe = "not found"; }
const required = createRequire(import.meta.url)("@langchain/core").who;
const imported = (await import("@langchain/core")).who;
console.log(JSON.stringify({ probe, required, imported }));
`,
  );
  const out = JSON.parse(execFileSync(process.execPath, [main], { encoding: "utf8" })) as Record<string, string>;
  // The failed probe fails as it would without the hook; the app's own require gets the app's copy, as Node gives it.
  expect(out).toEqual({ probe: "not found", required: "app", imported: "project" });
});
