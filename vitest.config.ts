import { defineConfig } from "vitest/config";

/** The API-level suites, run a second time against Postgres and Redis (scale-out storage). */
const BOTH_BACKENDS = [
  "test/integration/api.test.ts",
  "test/integration/bad-input.test.ts",
  "test/integration/double-texting.test.ts",
  "test/integration/fairness.test.ts",
  "test/integration/streams-and-cancel.test.ts",
];

export default defineConfig({
  test: {
    // Integration tests start real servers and child processes; give them room
    // on a 2-core machine instead of racing them against each other.
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: ["default"],
    projects: [
      {
        extends: true,
        test: { name: "embedded", include: ["src/**/*.test.ts", "test/**/*.test.ts"] },
      },
      {
        extends: true,
        // startServer (test/helpers/server.ts) gives each server its own
        // database on DATABASE_URL's server and its own Redis key prefix.
        test: { name: "scale-out", include: BOTH_BACKENDS, env: { BATON_TEST_BACKEND: "postgres" } },
      },
    ],
  },
});
