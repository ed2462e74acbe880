import { createSqliteBackend } from "../../src/backends/sqlite/index.ts";
import { describeRunQueue } from "../../src/testing/index.ts";

describeRunQueue({ name: "sqlite (in memory)", create: (clock) => createSqliteBackend({ path: ":memory:", busyTimeoutMs: 0, clock }) });
