/** Conformance suites for backends (exported as `baton/testing`). */
export { ManualClock, newRun, succeeded } from "./fixtures.ts";
export { describeRunQueue, type QueueSuiteInit } from "./queue-suite.ts";
export { CONTAINMENT_CASES, describeRecords, type RecordsSuiteInit } from "./records-suite.ts";
