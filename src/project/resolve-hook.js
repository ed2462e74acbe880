// Module resolution hook, registered by ./register.js with `module.register`
// before Baton's own modules load (bin/baton.js, and each execution thread).
//
// A graph's objects cross into Baton's code: messages are classified with
// @langchain/core's prototype checks, checkpoints and stores come from
// @langchain/langgraph-checkpoint, and zod schema metadata lives in a
// registry of @langchain/langgraph. Two copies of a package in one process
// break all of these. So these packages resolve from the project's folder,
// for every importer (Baton, the project, and the libraries between them),
// whenever the project has them; a project without them gets Baton's own.
// Plain JavaScript: hooks load in Node's loader thread, before tsx applies.

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

/** The resolution from `parentURL`, or undefined when nothing is found there. */
async function tryResolve(specifier, context, parentURL, nextResolve) {
  try {
    return await nextResolve(specifier, { ...context, parentURL });
  } catch (error) {
    if (error?.code === "ERR_MODULE_NOT_FOUND") return undefined;
    throw error;
  }
}

export async function resolve(specifier, context, nextResolve) {
  const match = SHARED.exec(specifier);
  if (match === null || projectURL === undefined) return nextResolve(specifier, context);
  const name = match[1];
  if (missing.has(name)) return nextResolve(specifier, context);
  if (name === "@langchain/langgraph-checkpoint" && langgraphURL === undefined && !missing.has("@langchain/langgraph")) {
    const langgraph = await tryResolve("@langchain/langgraph", context, projectURL, nextResolve);
    if (langgraph === undefined) missing.add("@langchain/langgraph");
    else langgraphURL = langgraph.url;
  }
  // The checkpoint library is a dependency of langgraph, not always one of the
  // project's own: the copy that langgraph uses is the one to share.
  const parentURL = name === "@langchain/langgraph-checkpoint" && langgraphURL !== undefined ? langgraphURL : projectURL;
  const resolved = await tryResolve(specifier, context, parentURL, nextResolve);
  if (resolved !== undefined) {
    if (name === "@langchain/langgraph" && langgraphURL === undefined) langgraphURL = resolved.url;
    return resolved;
  }
  // A package the project has, without this subpath: an error to see, not a second copy to load.
  if (specifier !== name && (await tryResolve(`${name}/package.json`, context, parentURL, nextResolve)) !== undefined) {
    return nextResolve(specifier, { ...context, parentURL });
  }
  missing.add(name);
  return nextResolve(specifier, context);
}
