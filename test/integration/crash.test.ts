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

async function startProcess() {
  const baton = runBaton(["serve", "--config", FIXTURES, "--port", "0", "--data-dir", dataDir]);
  return { child: baton.child, url: await baton.url };
}

describe("SIGKILL mid-run", () => {
  it("resumes the run after a restart, finishes it exactly once, and a stream resumes across the restart", async () => {
    const first = await startProcess();
    let client = new Client({ apiUrl: first.url });
    const marker = join(dataDir, "release-second-step");
    const thread = await client.threads.create();
    const run = await client.runs.create(thread.thread_id, "two_step", { input: human(`go file:${marker}`), streamMode: ["updates"] });
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
    await new Promise((resolve) => second.child.once("exit", resolve));
  });
});
