// Entry of an execution thread. A worker thread does not inherit the loader
// hooks of the thread that starts it: register tsx and the project's package
// resolution here, as bin/baton.js does, so Baton's TypeScript and the
// project's graph files load the same way, with the same LangChain copies.
import { workerData } from "node:worker_threads";
import { register as registerCjs } from "tsx/cjs/api";
import { register } from "tsx/esm/api";
import { registerProjectResolution } from "./project/register.js";

registerCjs();
register();
registerProjectResolution(workerData.baseDir);
await import("./execution-thread.ts");
