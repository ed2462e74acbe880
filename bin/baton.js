#!/usr/bin/env node
// Baton's command line. TypeScript (ours and the project's graph files) loads
// through tsx, so nothing needs a build step. Both hooks are registered: a
// project without "type": "module" has its .ts files loaded as CommonJS.
// Before any of Baton's modules load, the LangChain packages are pointed at
// the project's own copies (src/project/resolve-hook.js).
import { argv, env } from "node:process";
import { register as registerCjs } from "tsx/cjs/api";
import { register } from "tsx/esm/api";
import { projectDirFromArgs, registerProjectResolution } from "../src/project/register.js";

registerCjs();
register();
// A project on LangChain releases Baton does not support keeps Baton's own
// copies, so that the server starts far enough to refuse it by name.
const projectDir = projectDirFromArgs(argv.slice(2), env);
const { sharedPackagesSupported } = await import("../src/project/packages.ts");
if (sharedPackagesSupported(projectDir)) registerProjectResolution(projectDir);
await import("../src/cli/main.ts");
