/**
 * MCP and A2A on a scale-out deployment of real processes (two API and two
 * worker processes on one Postgres and one Redis): tool calls spread over
 * both API processes answer each its own run, a tool call whose worker is
 * SIGKILLed mid-run still answers the run's output, and an A2A task sent
 * through one API process is read through the other.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client as McpClient } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type Cluster, type Member } from "../helpers/cluster.ts";
import { killAll, runBaton } from "../helpers/process.ts";
import { until } from "../helpers/server.ts";

const markers = mkdtempSync(join(tmpdir(), "baton-mcp-"));
let cluster: Cluster;
let apiA: Member;
let apiB: Member;

beforeAll(async () => {
  // Short leases so a dead worker's run is requeued in about 2.5 s.
  cluster = await startCluster("mcp", { BATON_LEASE_MS: "2000", BATON_LEASE_RENEW_MS: "500", BATON_SWEEP_INTERVAL_MS: "500", BATON_SHUTDOWN_GRACE_MS: "300" });
  expect(await runBaton(["migrate"], { env: cluster.env }).exited).toBe(0);
  [apiA, apiB] = await Promise.all([cluster.start("api"), cluster.start("api"), cluster.start("worker"), cluster.start("worker")]);
}, 60_000);

afterAll(async () => {
  await cluster?.close();
  killAll();
  rmSync(markers, { recursive: true, force: true });
});

async function mcpClient(api: Member): Promise<McpClient> {
  const client = new McpClient({ name: "baton-scale-out-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${api.url}/mcp`)));
  return client;
}

const answerOf = (result: CallToolResult) => {
  expect(result.isError).toBeFalsy();
  const output = JSON.parse((result.content[0] as { text: string }).text) as { messages: { content: string }[] };
  return output.messages.map((m) => m.content);
};

describe("MCP and A2A across processes", () => {
  it("answers concurrent tool calls through two API processes each with its own run's output", async () => {
    const clients = await Promise.all([mcpClient(apiA), mcpClient(apiB)]);
    try {
      const lists = await Promise.all(clients.map(async (client) => (await client.listTools()).tools.map((tool) => tool.name).sort()));
      expect(lists[0]).toEqual(lists[1]);
      expect(lists[0]).toContain("echo");
      const texts = Array.from({ length: 12 }, (_, i) => `call ${i} ${crypto.randomUUID()}`);
      const answers = await Promise.all(texts.map((text, i) => clients[i % 2]!.callTool({ name: "echo", arguments: { messages: [{ role: "user", content: text }] } }) as Promise<CallToolResult>));
      expect(answers.map((answer) => answerOf(answer).at(-1))).toEqual(texts.map((text) => `echo: ${text}`));
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  });

  it("a tool call whose worker is SIGKILLed mid-run answers the run's output from the worker that resumes it", async () => {
    const file = join(markers, `go-${crypto.randomUUID()}`);
    const client = await mcpClient(apiA);
    try {
      const call = client.callTool({ name: "two_step", arguments: { messages: [{ role: "user", content: `go file:${file}` }] } }) as Promise<CallToolResult>;
      const claimedTwoStep = (m: Member) => m.baton.output().stderr.split("\n").some((line) => line.includes('"run:claimed"') && line.includes('"two_step"'));
      const workers = cluster.members.filter((m) => m.role === "worker");
      const runner = await until(async () => workers.find(claimedTwoStep), "the worker of the tool's run");
      await runner.stop("SIGKILL");
      writeFileSync(file, "go");
      expect(answerOf(await call)).toEqual([`go file:${file}`, `first: go file:${file}`, "second: done"]);
    } finally {
      await client.close();
    }
  });

  it("an A2A task sent through one API process is read through the other", async () => {
    const send = await fetch(`${apiA.url}/a2a/echo`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: "s", method: "message/send", params: { message: { role: "user", messageId: "m", parts: [{ kind: "text", text: "across" }] } } }),
    });
    const task = ((await send.json()) as { result: { id: string; contextId: string; artifacts: { parts: { text: string }[] }[] } }).result;
    expect(task.artifacts[0]!.parts[0]!.text).toBe("echo: across");
    const got = await fetch(`${apiB.url}/a2a/echo`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: "g", method: "tasks/get", params: { id: task.id, contextId: task.contextId } }),
    });
    expect(await got.json()).toMatchObject({ id: "g", result: { id: task.id, contextId: task.contextId, status: { state: "completed" } } });
  });
});
