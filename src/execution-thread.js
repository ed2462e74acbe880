// Entry of an execution thread. A worker thread does not inherit the loader
// hooks of the thread that starts it: register tsx here, as bin/baton.js does,
// so Baton's TypeScript and the project's graph files load the same way.
import { register as registerCjs } from "tsx/cjs/api";
import { register } from "tsx/esm/api";

registerCjs();
register();
await import("./execution-thread.ts");
