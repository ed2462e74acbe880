/**
 * Property-based isolation under custom auth (issue 12): every operation of
 * the official OpenAPI document, fuzzed as in openapi.test.ts, but sent by
 * bob with alice's ids wherever a request names a record (path, query and
 * body tokens). Whatever bob sends: no 5xx, no answer carries anything of
 * alice's that bob could not have sent himself (secrets planted in her
 * thread metadata, run input, store item, assistant and cron), and afterwards
 * alice's records are exactly as they were.
 *
 * Fixed seed and bounded runs in CI; FUZZ_RUNS / FUZZ_SEED for more.
 */
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.ts";
import { bodyArbitrary, pathParamArbitrary, queryArbitrary } from "./arbitraries.ts";
import { freshIds, send, type FuzzRequest, type Ids } from "./runner.ts";
import { loadSpec, NOT_SERVED, type Operation } from "./spec.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 20261130);
const RUNS = Number(process.env.FUZZ_RUNS ?? 8);
const PROJECT = join(import.meta.dirname, "../fixtures/auth/langgraph.fuzz.json");

const spec = loadSpec();
/** What Baton serves (openapi.test.ts checks the rest answer 404). */
const served = spec.operations.filter((op) => NOT_SERVED[op.id] === undefined);

const secret = (what: string) => `alice-secret-${what}-${crypto.randomUUID()}`;
const SECRETS = { thread: secret("thread"), run: secret("run"), item: secret("item"), assistant: secret("assistant"), cron: secret("cron") };

let t: TestServer;
let alice: Client;
let ids: Ids;
/** Alice's records as they were before bob's requests. */
let before: unknown;

async function aliceView(): Promise<unknown> {
  const [thread, runs, state, assistant, item, interrupted, cron] = await Promise.all([
    alice.threads.get(ids.thread),
    alice.runs.list(ids.thread),
    alice.threads.getState(ids.thread),
    alice.assistants.get(ids.assistant),
    alice.store.getItem(["alice", "notes"], "k"),
    alice.threads.getState(ids.interrupted),
    alice.crons.search({ threadId: ids.thread }),
  ]);
  return {
    thread: { metadata: thread.metadata, status: thread.status, values: thread.values },
    runs: runs.map((r) => [r.run_id, r.status]),
    state: state.values,
    assistant: { metadata: assistant.metadata, version: assistant.version, name: assistant.name },
    item: item?.value,
    interrupted: { values: interrupted.values, next: interrupted.next, checkpoint: interrupted.checkpoint.checkpoint_id },
    crons: cron.map((c) => ({ cron_id: c.cron_id, schedule: c.schedule, enabled: c.enabled, metadata: c.metadata, payload: c.payload, updated_at: c.updated_at })),
  };
}

beforeAll(async () => {
  t = await startServer({ configPath: PROJECT });
  alice = new Client({ apiUrl: t.url, defaultHeaders: { authorization: "Bearer token-alice" } });
  ids = await freshIds(alice);
  await alice.threads.update(ids.thread, { metadata: { secret: SECRETS.thread } });
  await alice.runs.wait(ids.thread, "echo", { input: { messages: [{ role: "user", content: SECRETS.run }] } });
  await alice.store.putItem(["alice", "notes"], "k", { secret: SECRETS.item });
  await alice.assistants.update(ids.assistant, { metadata: { secret: SECRETS.assistant } });
  await alice.crons.update(ids.cron, { metadata: { secret: SECRETS.cron } });
  before = await aliceView();
}, 60_000);
afterAll(async () => {
  await t?.close();
});

function requestArbitrary(op: Operation): fc.Arbitrary<FuzzRequest> {
  const pathParams = op.parameters.filter((p) => p.in === "path");
  const path = pathParams.length === 0 ? fc.constant({}) : fc.record(Object.fromEntries(pathParams.map((p) => [p.name, pathParamArbitrary(p.name)])));
  const body = op.body === undefined ? fc.constant(undefined) : bodyArbitrary(spec, op);
  return fc.tuple(path, queryArbitrary(spec, op), body).map(([p, query, b]) => ({ op, path: p, query, body: b?.body, mutation: b?.mutation }));
}

describe("bob, fuzzing with alice's ids", () => {
  for (const op of served) {
    it(op.id, { timeout: 300_000 }, async () => {
      const requests = fc.sample(requestArbitrary(op), { seed: SEED + hash(op.id), numRuns: RUNS });
      const leaks: string[] = [];
      const faults: string[] = [];
      for (const request of requests) {
        const outcome = await send(t.url, spec, request, ids, [], { authorization: "Bearer token-bob" });
        if (outcome.status >= 500 || outcome.status === 0) faults.push(`${op.id} -> ${outcome.status} ${outcome.answer?.slice(0, 200) ?? ""}`);
        for (const [what, value] of Object.entries(SECRETS)) {
          if (outcome.answer?.includes(value)) leaks.push(`${op.id} answered alice's ${what} secret (${outcome.status})`);
        }
      }
      expect(faults).toEqual([]);
      expect(leaks).toEqual([]);
      expect(await aliceView()).toEqual(before);
    });
  }
});

function hash(text: string): number {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.charCodeAt(0)) | 0;
  return Math.abs(h);
}
