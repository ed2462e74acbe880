// Adds ./resolve-hook.js for a project (see there why). Plain JavaScript:
// bin/baton.js and each execution thread call it before tsx loads Baton's
// TypeScript, so every later import goes through the hook.
import { dirname, join, resolve } from "node:path";
import { pathToFileURL, URL } from "node:url";
import { addResolveHook } from "../node-lines.js";
import * as hook from "./resolve-hook.js";

/**
 * The folder of the langgraph.json a command line names: `--config <path>`
 * or `--config=<path>`, else BATON_CONFIG, else ./langgraph.json (the
 * precedence of src/config.ts, read this early because the hook must be in
 * place before any LangChain package loads).
 */
export function projectDirFromArgs(argv, env) {
  let path = env.BATON_CONFIG || "./langgraph.json";
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--config" && argv[i + 1] !== undefined) path = argv[i + 1];
    else if (argv[i].startsWith("--config=")) path = argv[i].slice("--config=".length);
  }
  return dirname(resolve(path));
}

/** From now on, @langchain/core, @langchain/langgraph and @langchain/langgraph-checkpoint resolve from `projectDir` when it has them. */
export function registerProjectResolution(projectDir) {
  // Bare specifiers resolve from a file's folder upwards; the file need not exist.
  const projectURL = pathToFileURL(join(projectDir, "langgraph.json")).href;
  addResolveHook(hook, new URL("./resolve-hook.js", import.meta.url), { projectURL });
}
