#!/usr/bin/env node
// Baton's command line. TypeScript (ours and the project's graph files) loads
// through tsx, so nothing needs a build step. Both hooks are registered: a
// project without "type": "module" has its .ts files loaded as CommonJS.
import { register as registerCjs } from "tsx/cjs/api";
import { register } from "tsx/esm/api";

registerCjs();
register();
await import("../src/cli/main.ts");
