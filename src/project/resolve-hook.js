// Module resolution hook, added by ./register.js before Baton's own modules
// load (bin/baton.js, and each execution thread), with `module.registerHooks`
// or `module.register` as the Node line has them (src/node-lines.js).
//
// A graph's objects cross into Baton's code: messages are classified with
// @langchain/core's prototype checks, checkpoints and stores come from
// @langchain/langgraph-checkpoint, and zod schema metadata lives in a
// registry of @langchain/langgraph. Two copies of a package in one process
// break all of these. So these packages resolve from the project's folder,
// for every importer (Baton, the project, and the libraries between them),
// whenever the project has them; a project without them gets Baton's own.
// Plain JavaScript: on Node 20 hooks load in Node's loader thread, before
// tsx applies.

import { drive } from "../node-lines.js";

/** `@langchain/core`, `@langchain/langgraph`, `@langchain/langgraph-checkpoint`, and their subpaths; never `-sdk`, `-api`, `-ui`... */
const SHARED = /^(@langchain\/(?:core|langgraph|langgraph-checkpoint))(?:\/.+)?$/;

/** A file URL inside the project's folder, where bare specifiers resolve from. */
let projectURL;
/** Packages the project does not have: they resolve as usual, from their importer. */
const missing = new Set();
/** Where the project's @langchain/langgraph resolved (its checkpoint library is resolved beside it). */
let langgraphURL;

export function initialize(data) {
  projectURL = data.projectURL;
}

/**
 * How `specifier` resolves, as steps for `drive`: each yield asks what
 * resolving `[specifier, parentURL]` finds. Returns `{ resolved }` when that
 * is the answer, else `{ parentURL }`, where the importer's resolution
 * should run from instead of its own folder (undefined: its own folder).
 */
function* plan(specifier) {
  const match = SHARED.exec(specifier);
  if (match === null || projectURL === undefined) return {};
  const name = match[1];
  if (missing.has(name)) return {};
  if (name === "@langchain/langgraph-checkpoint" && langgraphURL === undefined && !missing.has("@langchain/langgraph")) {
    const langgraph = yield ["@langchain/langgraph", projectURL];
    if (langgraph === undefined) missing.add("@langchain/langgraph");
    else langgraphURL = langgraph.url;
  }
  // The checkpoint library is a dependency of langgraph, not always one of the
  // project's own: the copy that langgraph uses is the one to share.
  const parentURL = name === "@langchain/langgraph-checkpoint" && langgraphURL !== undefined ? langgraphURL : projectURL;
  const resolved = yield [specifier, parentURL];
  if (resolved !== undefined) {
    if (name === "@langchain/langgraph" && langgraphURL === undefined) langgraphURL = resolved.url;
    return { resolved };
  }
  // A package the project has, without this subpath: an error to see, not a second copy to load.
  if (specifier !== name && (yield [`${name}/package.json`, parentURL]) !== undefined) return { parentURL };
  missing.add(name);
  return {};
}

const finish = (end, specifier, context, nextResolve) =>
  end.resolved ?? nextResolve(specifier, end.parentURL === undefined ? context : { ...context, parentURL: end.parentURL });

/** The hook for `module.register` (Node 20). */
export async function resolve(specifier, context, nextResolve) {
  return finish(await drive(plan(specifier), context, nextResolve), specifier, context, nextResolve);
}

/**
 * The hook for `module.registerHooks` (22.15+, 24, 26). These hooks also
 * see CommonJS `require()`, for which Node resolves from the requiring file
 * whatever `parentURL` says: its answers would be another folder's, and
 * would poison `missing` and `langgraphURL` for every later import. So a
 * `require()` resolves as Node would without the hook
 * (src/project/resolve-hook.test.ts).
 */
export function resolveSync(specifier, context, nextResolve) {
  if (!context.conditions?.includes("import")) return nextResolve(specifier, context);
  return finish(drive(plan(specifier), context, nextResolve), specifier, context, nextResolve);
}
