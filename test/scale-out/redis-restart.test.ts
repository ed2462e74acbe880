/**
 * Redis restarted mid-run (it keeps nothing on disk, so it comes back
 * empty): runs still finish, answers and final states are right, and new
 * runs work. A private redis-server, so other test files are not disturbed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type Cluster, type Member } from "../helpers/cluster.ts";
import { killAll } from "../helpers/process.ts";
import { human, until } from "../helpers/server.ts";

type Msg = { content: string };
const markers = mkdtempSync(join(tmpdir(), "baton-redis-restart-"));
let port = 0;
let redis: ChildProcess | undefined;
let cluster: Cluster;
let api: Member;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port: free } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return free;
}

/** Starts redis-server on `port` and resolves when it accepts connections. */
async function startRedis(): Promise<ChildProcess> {
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes("Ready to accept connections")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
  });
  return child;
}

async function stopRedis(): Promise<void> {
  if (redis === undefined || redis.exitCode !== null) return;
  const exited = new Promise((resolve) => redis!.once("exit", resolve));
  redis.kill("SIGKILL");
  await exited;
}

beforeAll(async () => {
  port = await freePort();
  redis = await startRedis();
  cluster = await startCluster("redis_restart", { REDIS_URL: `redis://127.0.0.1:${port}` });
  [api] = await Promise.all([cluster.start("api"), cluster.start("worker")]);
}, 60_000);

afterAll(async () => {
  await cluster.close();
  killAll();
  await stopRedis();
  rmSync(markers, { recursive: true, force: true });
});

describe("Redis restarted mid-run", () => {
  it("runs still finish with the right answers and final states, streams end, and new runs work", async () => {
    const file = join(markers, "release");
    const thread = await api.client.threads.create();
    const run = await api.client.runs.create(thread.thread_id, "two_step", { input: human(`go file:${file}`), streamMode: ["updates"] });
    await until(async () => {
      const history = await api.client.threads.getHistory(thread.thread_id, { limit: 20 });
      return history.some((h) => JSON.stringify(h.values).includes("first: ")) ? true : undefined;
    }, "the first step's checkpoint");
    const joined = api.client.runs.join(thread.thread_id, run.run_id) as Promise<{ messages: Msg[] }>;
    const streamed = (async () => {
      const events: string[] = [];
      for await (const part of api.client.runs.joinStream(thread.thread_id, run.run_id)) events.push(part.event);
      return events;
    })();

    await stopRedis();
    redis = await startRedis();
    writeFileSync(file, "go");

    const expected = [`go file:${file}`, `first: go file:${file}`, "second: done"];
    expect((await joined).messages.map((m) => m.content)).toEqual(expected);
    // The stream ends (its end marker was lost with Redis's data; the durable record says the run is over).
    await streamed;
    expect((await api.client.runs.get(thread.thread_id, run.run_id)).status).toBe("success");
    const state = (await api.client.threads.getState(thread.thread_id)).values as { messages: Msg[] };
    expect(state.messages.map((m) => m.content)).toEqual(expected);

    const out = (await api.client.runs.wait(thread.thread_id, "echo", { input: human("after the restart") })) as { messages: Msg[] };
    expect(out.messages.map((m) => m.content)).toEqual([...expected, "after the restart", "echo: after the restart"]);
  });
});
