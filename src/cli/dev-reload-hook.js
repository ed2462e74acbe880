// Module resolution hook of a `baton dev` child (added by reportLoadedFiles
// in ./dev-reload.ts, through src/node-lines.js): posts the URL of every file the
// process imports, so the parent can watch them. Dependencies under
// node_modules are never watched, so they are not even posted. Plain
// JavaScript: on Node 20 hooks load in Node's loader thread.

let port;
const seen = new Set();

export function initialize(data) {
  port = data.port;
}

function report(result) {
  const url = result.url.split("?")[0];
  if (url.startsWith("file:") && !url.includes("/node_modules/") && !seen.has(url)) {
    seen.add(url);
    port.postMessage(url);
  }
  return result;
}

/** The hook for `module.register` (Node 20). */
export async function resolve(specifier, context, nextResolve) {
  return report(await nextResolve(specifier, context));
}

/** The hook for `module.registerHooks` (22.15+, 24, 26). */
export function resolveSync(specifier, context, nextResolve) {
  return report(nextResolve(specifier, context));
}
