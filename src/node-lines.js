// What differs between the Node.js lines Baton supports (20.19+, 22.12+, 24
// and 26), kept in this one file; docs/node-lines.md lists each difference
// and how it is handled. Plain JavaScript: bin/baton.js and each execution
// thread use it before tsx loads Baton's TypeScript.
import * as nodeModule from "node:module";
import { dirname } from "node:path";
import { execPath, version } from "node:process";

/**
 * Module resolution hooks. `module.registerHooks` (22.15+, 24, 26) runs
 * synchronous hooks in the calling thread; `module.register` (20) runs
 * asynchronous ones in a loader thread, from a module of their own, and is
 * deprecated from 26 on (DEP0205, a warning on every start). tsx makes the
 * same choice for its own hooks.
 */
export const inThreadHooks = typeof nodeModule.registerHooks === "function";

/**
 * Adds a resolve hook. `hook` is the hook module, imported by the caller,
 * and `hookURL` its URL: it exports `initialize(data)`, an asynchronous
 * `resolve` for `module.register`, and `resolveSync`, the same resolution
 * on a synchronous `nextResolve`, for `module.registerHooks`. On 20 the
 * module loads again in the loader thread and the data crosses to it, so it
 * must be cloneable (a MessagePort goes in `transferList`).
 */
export function addResolveHook(hook, hookURL, data, transferList = []) {
  if (inThreadHooks) {
    hook.initialize(data);
    nodeModule.registerHooks({ resolve: hook.resolveSync });
  } else {
    nodeModule.register(hookURL, { data, transferList });
  }
}

/**
 * Runs a resolution written as a generator on either kind of hook: the
 * generator yields `[specifier, parentURL]` to try and gets back what
 * `nextResolve` found there, or undefined when nothing is (a not-found error
 * is an answer, not a failure). `drive` returns the generator's result, a
 * promise of it when `nextResolve` is asynchronous.
 */
export function drive(steps, context, nextResolve) {
  const attempt = ([specifier, parentURL]) => {
    try {
      const found = nextResolve(specifier, { ...context, parentURL });
      return found instanceof Promise ? found.catch(notFound) : found;
    } catch (error) {
      return notFound(error);
    }
  };
  const run = (step) => {
    while (!step.done) {
      const found = attempt(step.value);
      if (found instanceof Promise) return found.then((answer) => run(steps.next(answer)));
      step = steps.next(found);
    }
    return step.value;
  };
  return run(steps.next());
}

/** undefined for "no such module" (ERR_MODULE_NOT_FOUND from import, MODULE_NOT_FOUND from require on in-thread hooks); anything else is rethrown. */
function notFound(error) {
  if (error?.code === "ERR_MODULE_NOT_FOUND" || error?.code === "MODULE_NOT_FOUND") return undefined;
  throw error;
}

/**
 * What to tell a user whose native module was built for another Node line
 * (`node_modules` installed under 20, started under 22, say): `{ problem,
 * fix }`, or undefined when `error` is something else. Node's own message
 * says "re-compiling or re-installing"; this names the package, both ABIs
 * and the command, with the `--nodedir` that a machine whose npm config
 * points at another Node's headers needs.
 */
export function nativeModuleMismatch(error) {
  const message = typeof error?.message === "string" ? error.message : "";
  const abi = /NODE_MODULE_VERSION (\d+)\.\s+This version of Node\.js requires\s+NODE_MODULE_VERSION (\d+)/.exec(message);
  if (abi === null) return undefined;
  // The innermost node_modules folder names the package (a nested install is inside another's).
  const pkg = [...message.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)\//g)].at(-1)?.[1] ?? "the native module";
  return {
    problem: `${pkg} was built for another Node.js line (ABI ${abi[1]}); this Node.js ${version} needs ABI ${abi[2]}`,
    fix:
      `reinstall it with this Node: npm rebuild ${pkg} (or npm ci), adding --nodedir=${dirname(dirname(execPath))} ` +
      "if npm's config names another Node's headers (npm config get nodedir); see docs/node-lines.md",
  };
}
