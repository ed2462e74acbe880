/**
 * Issue 11, finding 7: webhook delivery policy (docs/webhooks.md). Loopback
 * and private targets are refused unless webhookAllowPrivate (after DNS
 * resolution, whatever form the address takes), redirects are not followed,
 * 5xx are retried with backoff and other 4xx are not, and a relative webhook
 * reaches the project's own http.app, never Baton's API.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { refusedAddressKind } from "../../src/http/webhooks.ts";
import { human, startServer, type TestServer } from "../helpers/server.ts";

/** Log lines of this file's servers (they log JSON lines at warn and above to stderr). */
const logs: Record<string, unknown>[] = [];
const logged = (msg: string, runId: string) => logs.filter((l) => l.msg === msg && l.run_id === runId);

/** A local HTTP server that records what it receives and answers as `answer` says. */
interface Target {
  url: string;
  received: { path: string; headers: IncomingMessage["headers"]; body: string }[];
  close(): Promise<void>;
}
async function target(answer: (request: IncomingMessage, response: ServerResponse, count: number) => void = (_q, r) => r.end("ok")): Promise<Target> {
  const received: Target["received"] = [];
  const server: Server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
    request.on("end", () => {
      received.push({ path: request.url ?? "", headers: request.headers, body });
      answer(request, response, received.length);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

let strict: TestServer;
let open: TestServer;
const targets: Target[] = [];
beforeAll(async () => {
  const write = process.stderr.write.bind(process.stderr);
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
    for (const line of String(chunk).split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not one of ours
      }
    }
    return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  });
  [strict, open] = await Promise.all([startServer(), startServer({ webhookAllowPrivate: true, webhookAttempts: 3 })]);
});
afterAll(async () => {
  await Promise.all([strict?.close(), open?.close(), ...targets.map((t) => t.close())]);
  vi.restoreAllMocks();
});

const newTarget = async (answer?: Parameters<typeof target>[0]) => {
  const made = await target(answer);
  targets.push(made);
  return made;
};

/** Runs `echo` to the end with `webhook`; the run's id. */
async function runWith(t: TestServer, webhook: string, assistant = "echo"): Promise<{ runId: string; threadId: string }> {
  const thread = await t.client.threads.create();
  const run = await t.client.runs.create(thread.thread_id, assistant, { input: human("hook"), webhook });
  await t.client.runs.join(thread.thread_id, run.run_id);
  return { runId: run.run_id, threadId: thread.thread_id };
}

/** The log lines `msg` of a run, once there are `count` of them. */
const awaitLogs = (msg: string, runId: string, count = 1) =>
  vi.waitFor(
    () => {
      const lines = logged(msg, runId);
      if (lines.length < count) throw new Error(`${lines.length} ${msg} lines for ${runId}`);
      return lines;
    },
    { timeout: 15_000, interval: 20 },
  );

describe("webhook targets", () => {
  it("refuses loopback targets by default, in every spelling of the address: nothing is sent", async () => {
    const hook = await newTarget();
    const port = new URL(hook.url).port;
    const spellings = [
      `http://localhost:${port}/hook`, // a name resolving to loopback
      `http://2130706433:${port}/hook`, // 127.0.0.1 as one decimal number
      `http://0x7f.1:${port}/hook`, // hex and short forms
      `http://[::ffff:127.0.0.1]:${port}/hook`, // IPv4-mapped IPv6
      `${hook.url}/hook`,
    ];
    for (const webhook of spellings) {
      const { runId } = await runWith(strict, webhook);
      const [failed] = await awaitLogs("run:webhook-failed", runId);
      expect(failed!.error, webhook).toMatch(/refused: .*loopback/);
      expect(failed!.attempt).toBe(1);
      expect(failed!.retry_in_ms).toBeUndefined();
    }
    expect(hook.received).toEqual([]);
  });

  it("delivers to a private target with webhookAllowPrivate: the run, its status and its values", async () => {
    const hook = await newTarget();
    const { runId, threadId } = await runWith(open, `${hook.url}/done?token=secret`);
    await expect.poll(() => hook.received.length).toBe(1);
    const [delivery] = hook.received;
    expect(delivery!.path).toBe("/done?token=secret");
    expect(delivery!.headers["content-type"]).toBe("application/json");
    const payload = JSON.parse(delivery!.body) as { run_id: string; thread_id: string; status: string; values: { messages: { content: string }[] } };
    expect(payload).toMatchObject({ run_id: runId, thread_id: threadId, status: "success" });
    expect(payload.values.messages.at(-1)!.content).toBe("echo: hook");
    // When the run was created, ran and ended, and when this attempt was sent, in that order (as the official body has them).
    const times = JSON.parse(delivery!.body) as Record<"created_at" | "run_started_at" | "run_ended_at" | "webhook_sent_at", string>;
    const ms = (["created_at", "run_started_at", "run_ended_at", "webhook_sent_at"] as const).map((field) => {
      expect(times[field], field).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      return Date.parse(times[field]);
    });
    expect(ms).toEqual([...ms].sort((a, b) => a - b));

    // By name too: the socket's own lookup checks the addresses and connects to them.
    await runWith(open, `http://user:p%40ss@localhost:${new URL(hook.url).port}/by-name`);
    await expect.poll(() => hook.received.length).toBe(2);
    expect(hook.received[1]!.path).toBe("/by-name");
    expect(hook.received[1]!.headers.authorization).toBe(`Basic ${Buffer.from("user:p@ss").toString("base64")}`);
  });

  it("does not follow a redirect: the redirect's target receives nothing, and a 3xx is not retried", async () => {
    const elsewhere = await newTarget();
    const hook = await newTarget((_q, response) => {
      response.writeHead(307, { Location: `${elsewhere.url}/stolen` });
      response.end();
    });
    const { runId } = await runWith(open, `${hook.url}/hook`);
    const [failed] = await awaitLogs("run:webhook-failed", runId);
    expect(failed).toMatchObject({ status: 307, attempt: 1 });
    expect(failed!.retry_in_ms).toBeUndefined();
    expect(hook.received).toHaveLength(1);
    expect(elsewhere.received).toEqual([]);
  });

  it("retries a 503 with backoff until it is delivered; a 404 is final", async () => {
    const flaky = await newTarget((_q, response, count) => {
      response.writeHead(count < 3 ? 503 : 200);
      response.end();
    });
    const { runId } = await runWith(open, `${flaky.url}/hook`);
    await expect.poll(() => flaky.received.length, { timeout: 15_000 }).toBe(3);
    const failures = await awaitLogs("run:webhook-failed", runId, 2);
    expect(failures.map((f) => [f.attempt, f.status])).toEqual([
      [1, 503],
      [2, 503],
    ]);
    expect(failures.every((f) => typeof f.retry_in_ms === "number")).toBe(true);
    // Backoff grows: the second wait is drawn from a range twice as high.
    expect(failures[1]!.retry_in_ms as number).toBeGreaterThanOrEqual(failures[0]!.retry_in_ms as number);
    // Each attempt says when it was sent; the run's own times stay those of the run.
    const bodies = flaky.received.map((r) => JSON.parse(r.body) as Record<string, string>);
    const sent = bodies.map((b) => Date.parse(b.webhook_sent_at!));
    expect(sent[1]!).toBeGreaterThan(sent[0]!);
    expect(sent[2]!).toBeGreaterThan(sent[1]!);
    expect(new Set(bodies.map((b) => `${b.run_started_at} ${b.run_ended_at}`)).size).toBe(1);

    const gone = await newTarget((_q, response) => {
      response.writeHead(404);
      response.end();
    });
    const second = await runWith(open, `${gone.url}/hook`);
    const [final] = await awaitLogs("run:webhook-failed", second.runId);
    expect(final).toMatchObject({ status: 404, attempt: 1 });
    expect(final!.retry_in_ms).toBeUndefined();
    expect(gone.received).toHaveLength(1);
  });

  it("gives up after webhookAttempts on a target that keeps failing", async () => {
    const down = await newTarget((_q, response) => {
      response.writeHead(500);
      response.end();
    });
    const { runId } = await runWith(open, `${down.url}/hook`);
    const failures = await awaitLogs("run:webhook-failed", runId, 3);
    expect(failures.map((f) => f.attempt)).toEqual([1, 2, 3]);
    expect(failures[2]!.retry_in_ms).toBeUndefined();
    expect(down.received).toHaveLength(3);
  });
});

describe("worker slots", () => {
  it("a target that does not answer holds no worker slot: the next run on a one-slot server finishes meanwhile", async () => {
    const hanging = await newTarget(() => {
      // never answers
    });
    const t = await startServer({ webhookAllowPrivate: true, workers: 1, webhookTimeoutMs: 60_000 });
    try {
      const first = await runWith(t, `${hanging.url}/hook`);
      await expect.poll(() => hanging.received.length).toBe(1);
      const thread = await t.client.threads.create();
      const next = await t.client.runs.wait(thread.thread_id, "echo", { input: human("next") });
      expect((next as { messages: unknown[] }).messages).toHaveLength(2);
      // The first delivery is still waiting for its answer: nothing failed or was sent.
      expect(logged("run:webhook-failed", first.runId)).toEqual([]);
    } finally {
      await t.close();
    }
  });
});

describe("shutdown", () => {
  it("abandons a delivery still pending when the server stops, and says so", async () => {
    const hanging = await newTarget(() => {
      // never answers
    });
    const t = await startServer({ webhookAllowPrivate: true });
    let runId: string;
    try {
      ({ runId } = await runWith(t, `${hanging.url}/hook`));
      await expect.poll(() => hanging.received.length).toBe(1);
    } finally {
      await t.close();
    }
    expect(logged("run:webhook-abandoned", runId)).toMatchObject([{ attempt: 1, reason: "server stopping" }]);
    expect(logged("run:webhook-sent", runId)).toEqual([]);
  });
});

describe("relative webhooks", () => {
  it("reach the project's http.app, never the API: a webhook naming another thread's state leaves it unchanged", async () => {
    const other = await strict.client.threads.create();
    await strict.client.runs.wait(other.thread_id, "echo", { input: human("mine") });
    const before = await strict.client.threads.getState(other.thread_id);
    const historyBefore = await strict.client.threads.getHistory(other.thread_id, { limit: 100 });

    const { runId } = await runWith(strict, `/threads/${other.thread_id}/state`);
    const [failed] = await awaitLogs("run:webhook-failed", runId);
    expect(failed).toMatchObject({ status: 404, attempt: 1 });

    expect(await strict.client.threads.getState(other.thread_id)).toEqual(before);
    expect(await strict.client.threads.getHistory(other.thread_id, { limit: 100 })).toHaveLength(historyBefore.length);

    // A route of the project's own app (test/fixtures/graphs/app.ts) receives it.
    const received = ((globalThis as Record<string, unknown>).__batonWebhooks ??= []) as { run_id: string; status: string }[];
    const delivered = await runWith(strict, "/hooks/run-done");
    await expect.poll(() => received.find((r) => r.run_id === delivered.runId)?.status).toBe("success");
  });

  it("fail, logged, when the project has no http.app", async () => {
    const bare = await startServer({ configPath: join(import.meta.dirname, "../fixtures/differential/langgraph.json") });
    try {
      const { runId } = await runWith(bare, "/hooks/run-done", "chat");
      const [failed] = await awaitLogs("run:webhook-failed", runId);
      expect(failed!.error).toMatch(/http\.app/);
    } finally {
      await bare.close();
    }
  });
});

describe("address policy", () => {
  it("names what each refused address is, IPv4 inside IPv6 judged as IPv4; public addresses pass", () => {
    const cases: [string, string | null][] = [
      ["127.0.0.1", "loopback"],
      ["127.255.1.2", "loopback"],
      ["::1", "loopback"],
      ["0.0.0.0", "unspecified"],
      ["::", "unspecified"],
      ["10.1.2.3", "private"],
      ["172.16.0.1", "private"],
      ["172.31.255.255", "private"],
      ["192.168.1.1", "private"],
      ["fc00::1", "private"],
      ["fd12:3456::1", "private"],
      ["169.254.169.254", "link-local"],
      ["fe80::1%eth0", "link-local"],
      ["100.64.0.1", "shared (CGNAT)"],
      ["224.0.0.1", "multicast"],
      ["ff02::1", "multicast"],
      ["255.255.255.255", "reserved"],
      ["::ffff:127.0.0.1", "loopback"],
      ["::ffff:7f00:1", "loopback"],
      ["::ffff:a9fe:a9fe", "link-local"],
      ["64:ff9b::10.0.0.1", "private"],
      ["2002:c0a8:0101::1", "private"],
      ["::ffff:0:a9fe:a9fe", "link-local"],
      ["::ffff:0:10.0.0.5", "private"],
      ["::ffff:0:8.8.8.8", "reserved"],
      ["64:ff9b:1::a9fe:a9fe", "link-local"],
      ["64:ff9b:1::808:808", "reserved"],
      ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "reserved"],
      ["2001:4860:4860::8888", null],
      ["8.8.8.8", null],
      ["172.32.0.1", null],
      ["100.128.0.1", null],
      ["::ffff:8.8.8.8", null],
      ["2606:4700:4700::1111", null],
      ["not an address", "invalid"],
    ];
    expect(cases.map(([address]) => [address, refusedAddressKind(address)])).toEqual(cases);
  });
});
