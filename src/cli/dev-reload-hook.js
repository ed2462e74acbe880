// Module resolution hook of a `baton dev` child (registered by
// reportLoadedFiles in ./dev-reload.ts): posts the URL of every file the
// process imports, so the parent can watch them. Dependencies under
// node_modules are never watched, so they are not even posted. Plain
// JavaScript: hooks load in Node's loader thread.

let port;
const seen = new Set();

export function initialize(data) {
  port = data.port;
}

export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  const url = result.url.split("?")[0];
  if (url.startsWith("file:") && !url.includes("/node_modules/") && !seen.has(url)) {
    seen.add(url);
    port.postMessage(url);
  }
  return result;
}
