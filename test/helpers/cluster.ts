/**
 * A scale-out Baton made of real processes: API and worker processes on one
 * fresh Postgres database and one Redis key prefix, as an operator runs them.
 */
import { randomUUID } from "node:crypto";
import { Client } from "@langchain/langgraph-sdk";
import { runBaton, type Baton } from "./process.ts";
import { freshDatabase, type TestDatabase } from "./postgres.ts";
import { FIXTURES, REDIS_URL, until } from "./server.ts";

export interface Member {
  role: "api" | "worker" | "all";
  url: string;
  client: Client;
  baton: Baton;
  /** Whether this process logged the claim of `runId`. */
  claimed(runId: string): boolean;
  stop(signal: NodeJS.Signals): Promise<number | string>;
}

export interface Cluster {
  database: TestDatabase;
  env: NodeJS.ProcessEnv;
  members: Member[];
  start(role: Member["role"], env?: NodeJS.ProcessEnv): Promise<Member>;
  /** The worker that claimed `runId` (from its `run:claimed` log line). */
  runner(runId: string, among?: Member[]): Promise<Member>;
  close(): Promise<void>;
}

/** `configPath`: the project's langgraph.json every process serves (the shared test graphs by default). */
export async function startCluster(label: string, env: NodeJS.ProcessEnv = {}, configPath = FIXTURES): Promise<Cluster> {
  const database = await freshDatabase(label);
  const shared: NodeJS.ProcessEnv = {
    DATABASE_URL: database.url,
    REDIS_URL,
    BATON_REDIS_PREFIX: `baton-test:${randomUUID()}:`,
    BATON_LOG_LEVEL: "info",
    ...env,
  };
  const members: Member[] = [];
  const cluster: Cluster = {
    database,
    env: shared,
    members,
    async start(role, extra = {}) {
      const baton = runBaton(["serve", "--config", configPath, "--port", "0", "--role", role], { env: { ...shared, ...extra } });
      const url = await baton.url;
      const member: Member = {
        role,
        url,
        client: new Client({ apiUrl: url, callerOptions: { maxRetries: 0 } }),
        baton,
        claimed: (runId) => baton.output().stderr.split("\n").some((line) => line.includes('"run:claimed"') && line.includes(runId)),
        async stop(signal) {
          baton.child.kill(signal);
          return baton.exited;
        },
      };
      members.push(member);
      return member;
    },
    async runner(runId, among = members) {
      return until(async () => among.find((m) => m.claimed(runId)), `the worker of run ${runId}`);
    },
    async close() {
      const alive = members.filter((m) => m.baton.child.exitCode === null && m.baton.child.signalCode === null);
      await Promise.all(alive.map((m) => m.stop("SIGKILL")));
      await database.drop();
    },
  };
  return cluster;
}
