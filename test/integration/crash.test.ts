/**
 * C3: a real server process is killed with SIGKILL mid-run; after a restart
 * on the same data directory the run finishes exactly once, resumed from its
 * last checkpoint.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, describe, expect, it } from "vitest";
import { killAll, runBaton } from "../helpers/process.ts";
import { FIXTURES, human, until } from "../helpers/server.ts";

const dataDir = mkdtempSync(join(tmpdir(), "baton-crash-"));

afterAll(() => {
  killAll();
  rmSync(dataDir, { recursive: true, force: true });
});

async function startProcess(env: NodeJS.ProcessEnv = {}) {
  const baton = runBaton(["serve", "--config", FIXTURES, "--port", "0", "--data-dir", dataDir], { env });
  return { child: baton.child, url: await baton.url, exited: baton.exited, output: baton.output };
}

/** Starts a two-step run whose second step waits for `marker`; resolves once the first step is durable. */
async function startTwoStep(client: Client, marker: string) {
  const thread = await client.threads.create();
  const run = await client.runs.create(thread.thread_id, "two_step", { input: human(`go file:${marker}`), streamMode: ["updates"] });
  await until(async () => {
    const history = await client.threads.getHistory(thread.thread_id, { limit: 20 });
    return history.some((h) => JSON.stringify(h.values).includes("first: ")) ? true : undefined;
  }, "the first step's checkpoint");
  return { thread, run };
}

describe("SIGKILL mid-run", () => {
  it("resumes the run after a restart, finishes it exactly once, and a stream resumes across the restart", async () => {
    const first = await startProcess();
    let client = new Client({ apiUrl: first.url });
    const marker = join(dataDir, "release-second-step");
    const thread = await client.threads.create();
    const run = await client.runs.create(thread.thread_id, "two_step", {
      input: human(`go file:${marker}`),
      streamMode: ["updates"],
      streamResumable: true,
    });
    // Follow the run's stream up to the first step's update, as a client would before the crash.
    let lastEventId: string | undefined;
    for await (const part of client.runs.joinStream(thread.thread_id, run.run_id)) {
      lastEventId = (part as { id?: string }).id;
      if (part.event === "updates" && "first" in (part.data as object)) break;
    }
    expect(lastEventId).toBeDefined();
    // Wait until the first step's checkpoint is durable (a fact across processes: polled).
    await until(async () => {
      const history = await client.threads.getHistory(thread.thread_id, { limit: 20 });
      return history.some((h) => (h.metadata as { step?: number; source?: string }).source === "loop" && JSON.stringify(h.values).includes("first: ")) ? true : undefined;
    }, "the first step's checkpoint");
    first.child.kill("SIGKILL");
    await new Promise((resolve) => first.child.once("exit", resolve));

    writeFileSync(marker, "go");
    const second = await startProcess();
    client = new Client({ apiUrl: second.url });
    // Reconnecting with the last id seen gets the rest: the new attempt, from its resume point.
    const rest: { event: string; data: unknown }[] = [];
    for await (const part of client.runs.joinStream(thread.thread_id, run.run_id, { lastEventId })) rest.push(part);
    expect(rest.map((p) => p.event)).toEqual(["metadata", "updates"]);
    expect(rest[0]!.data).toEqual({ run_id: run.run_id, attempt: 2 });
    expect(Object.keys(rest[1]!.data as object)).toEqual(["second"]);
    const out = (await client.runs.join(thread.thread_id, run.run_id)) as { messages: { content: string }[] };
    expect(out.messages.map((m) => m.content)).toEqual([`go file:${marker}`, `first: go file:${marker}`, "second: done"]);
    const final = await client.runs.get(thread.thread_id, run.run_id);
    expect(final.status).toBe("success");
    expect((await client.runs.list(thread.thread_id)).map((r) => r.run_id)).toEqual([run.run_id]);
    const state = await client.threads.getState(thread.thread_id);
    expect((state.values as { messages: unknown[] }).messages).toHaveLength(3);
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  });
});

describe("SIGTERM", () => {
  it("hands an unfinished run back after the grace period; the next start finishes it once", async () => {
    const first = await startProcess({ BATON_SHUTDOWN_GRACE_MS: "300", BATON_LOG_LEVEL: "info" });
    let client = new Client({ apiUrl: first.url });
    const marker = join(dataDir, "release-after-sigterm");
    const { thread, run } = await startTwoStep(client, marker);
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    // Handed back by the stopping process itself, not found dead by the next one.
    expect(first.output().stderr).toMatch(new RegExp(`"msg":"run:handed-back","run_id":"${run.run_id}"`));

    writeFileSync(marker, "go");
    const second = await startProcess();
    client = new Client({ apiUrl: second.url });
    const out = (await client.runs.join(thread.thread_id, run.run_id)) as { messages: { content: string }[] };
    expect(out.messages.map((m) => m.content)).toEqual([`go file:${marker}`, `first: go file:${marker}`, "second: done"]);
    expect((await client.runs.get(thread.thread_id, run.run_id)).status).toBe("success");
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  });

  it("lets a run that finishes within the grace period finish before exiting", async () => {
    const first = await startProcess({ BATON_SHUTDOWN_GRACE_MS: "20000" });
    const client = new Client({ apiUrl: first.url });
    const marker = join(dataDir, "release-within-grace");
    const { thread, run } = await startTwoStep(client, marker);
    first.child.kill("SIGTERM");
    writeFileSync(marker, "go");
    expect(await first.exited).toBe(0);

    const second = await startProcess();
    const after = new Client({ apiUrl: second.url });
    expect((await after.runs.get(thread.thread_id, run.run_id)).status).toBe("success");
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  });
});
