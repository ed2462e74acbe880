/** Conformance suites for backends (exported as `baton/testing`). */
export { ManualClock, describeRunQueue, newRun, succeeded, type QueueSuiteInit } from "./queue-suite.ts";
