import { defineConfig } from "vitest/config";

/**
 * The API-level suites, run again with graphs on the HTTP event loop
 * (embedded-inline) and against Postgres and Redis (scale-out).
 */
const BOTH_BACKENDS = [
  "test/integration/api.test.ts",
  "test/integration/idempotency.test.ts",
  "test/integration/api-keys.test.ts",
  "test/integration/auth.test.ts",
  "test/integration/bad-input.test.ts",
  "test/integration/double-texting.test.ts",
  "test/integration/fairness.test.ts",
  "test/integration/streams-and-cancel.test.ts",
  "test/integration/dropin-http.test.ts",
  "test/integration/dropin-state.test.ts",
  "test/integration/dropin-schemas.test.ts",
  "test/integration/dropin-thread-config.test.ts",
  // Robustness (issue 11): hostile input, state and runs, webhooks, slow readers, fuzzing.
  "test/integration/hostile-input.test.ts",
  "test/integration/hostile-values.test.ts",
  "test/integration/hostile-state.test.ts",
  "test/integration/hostile-runs.test.ts",
  "test/integration/webhooks.test.ts",
  "test/integration/slow-readers.test.ts",
  "test/fuzz/openapi.test.ts",
  // The access seam (issue 16): an authorizer's filter is compiled per backend.
  "test/integration/access-seam.test.ts",
  // Agent pools (issue 12): factory instances leased to one run at a time.
  "test/integration/agent-pools.test.ts",
  // Operations (issue 13): /metrics figures against the runs a test made.
  "test/integration/metrics.test.ts",
  // Health (issue 13): readiness checks the backend's database and schema, and Redis when scale-out.
  "test/integration/health.test.ts",
  // Tracing (issue 13): the OTEL context crosses the queue to an execution thread, inline, and to a scale-out worker.
  "test/integration/tracing.test.ts",
  // Crons (issue 14): records, validation and firing through the SDK.
  "test/integration/crons.test.ts",
  // Store semantic search and item TTLs (issue 14 item 2): vectors and expiry per backend, a sweeper per process.
  "test/integration/store-semantic.test.ts",
  // MCP and A2A (issue 14): tools and tasks are runs through RunService on either backend.
  "test/integration/mcp-a2a.test.ts",
  // Thread streams (issue 14 item 4): every run of a thread, resumed exactly from the thread's log in either bus.
  "test/integration/thread-stream.test.ts",
  // Thread TTLs (issue 14 item 3): the sweep's claim is per backend, and two sweepers share one database in scale-out.
  "test/integration/thread-ttl.test.ts",
  // Protocol v2 (issue 14 item 4): commands, SSE and WebSocket event streams with the since cursor.
  "test/integration/protocol.test.ts",
];

export default defineConfig({
  test: {
    // Integration tests start real servers and child processes; give them room
    // on a 2-core machine instead of racing them against each other.
    fileParallelism: true,
    maxWorkers: 2,
    // Hang guards, not speed checks (the benchmark measures speed): many
    // tests start Baton processes, Postgres databases or a browser, which a
    // loaded 2-core machine can take many seconds to do.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // expect.poll waits for things that always come (a claim, a webhook, a
    // log line); its 1 s default is shorter than a loaded machine can take.
    expect: { poll: { timeout: 10_000 } },
    reporters: ["default"],
    projects: [
      {
        extends: true,
        test: { name: "embedded", include: ["src/**/*.test.ts", "test/**/*.test.ts"] },
      },
      {
        extends: true,
        // The same suites with graphs executed on the server's own event loop
        // (executionThreads 0, the default on a one-core machine); the
        // "embedded" project runs them in one execution thread.
        test: { name: "embedded-inline", include: BOTH_BACKENDS, env: { BATON_TEST_THREADS: "0" } },
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
