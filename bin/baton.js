#!/usr/bin/env node
// Baton's command line. TypeScript (ours and the project's graph files) loads
// through tsx, so nothing needs a build step. Both hooks are registered: a
// project without "type": "module" has its .ts files loaded as CommonJS.
// Before any of Baton's modules load, the LangChain packages are pointed at
// the project's own copies (src/project/resolve-hook.js).
import { argv, env, exit, stderr } from "node:process";
import { register as registerCjs } from "tsx/cjs/api";
import { register } from "tsx/esm/api";
import { projectDirFromArgs, registerProjectResolution } from "../src/project/register.js";

registerCjs();
register();
// A project on LangChain releases Baton does not support keeps Baton's own
// copies, so that the server starts far enough to refuse it by name.
const projectDir = projectDirFromArgs(argv.slice(2), env);
const packages = await import("../src/project/packages.ts");
const projectCopies = packages.sharedPackagesSupported(projectDir) ? packages.projectCopies(projectDir) : [];
if (projectCopies.length > 0) registerProjectResolution(projectDir);
try {
  await import("../src/cli/main.ts");
} catch (error) {
  // Baton's own modules import the project's copies first: a broken install
  // of them (a dependency too old for them, say) fails here, before main runs.
  if (projectCopies.length === 0) throw error;
  stderr.write(`baton: ${packages.projectCopiesFailed(projectCopies, error)}\n`);
  exit(1);
}
