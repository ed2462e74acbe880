#!/usr/bin/env node
// Baton's command line. TypeScript (ours and the project's graph files) loads
// through tsx, so nothing needs a build step.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
