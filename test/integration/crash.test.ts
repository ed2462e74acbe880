/**
 * C3: a real server process is killed with SIGKILL mid-run; after a restart
 * on the same data directory the run finishes exactly once, resumed from its
 * last checkpoint.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, describe, expect, it } from "vitest";
import { FIXTURES, human, until } from "../helpers/server.ts";

const ROOT = join(import.meta.dirname, "../..");
const dataDir = mkdtempSync(join(tmpdir(), "baton-crash-"));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
});

/** Starts `baton serve` and resolves with its URL, read from its first stdout line. */
function startProcess(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ["bin/baton.js", "serve", "--config", FIXTURES, "--port", "0", "--data-dir", dataDir], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, BATON_LOG_LEVEL: "warn" },
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolve({ child, url: match[1]! });
    });
    child.once("exit", (code) => reject(new Error(`baton exited with ${code}: ${err}`)));
  });
}

describe("SIGKILL mid-run", () => {
  it("resumes the run after a restart and finishes it exactly once", async () => {
    const first = await startProcess();
    let client = new Client({ apiUrl: first.url });
    const marker = join(dataDir, "release-second-step");
    const thread = await client.threads.create();
    const run = await client.runs.create(thread.thread_id, "two_step", { input: human(`go file:${marker}`) });
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
