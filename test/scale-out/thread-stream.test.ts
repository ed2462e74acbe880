/**
 * Thread streams across processes: a client reading a thread's stream from
 * one API process that is SIGKILLed resumes on another API process with
 * `Last-Event-ID` and gets exactly the events it missed (C8), the rest of the
 * run and the next run of the thread included. The thread's log lives in
 * Redis, not in the process that served the stream. The same for a protocol
 * v2 WebSocket client resuming with `since`. The runs wait on files the test
 * creates (the cross-process gate of the `two_step` fixture).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { startCluster, type Cluster, type Member } from "../helpers/cluster.ts";
import { killAll, runBaton } from "../helpers/process.ts";
import { human } from "../helpers/server.ts";

const markers = mkdtempSync(join(tmpdir(), "baton-thread-stream-"));
const marker = (name: string) => join(markers, `${name}-${crypto.randomUUID()}`);

let cluster: Cluster;
let apiA: Member;
let apiB: Member;

beforeAll(async () => {
  cluster = await startCluster("threadstream", { BATON_SHUTDOWN_GRACE_MS: "300", BATON_KEEP_ALIVE_MS: "500" });
  const migrate = runBaton(["migrate"], { env: cluster.env });
  expect(await migrate.exited).toBe(0);
  [apiA, apiB] = await Promise.all([cluster.start("api"), cluster.start("api"), cluster.start("worker")]);
}, 60_000);

afterAll(async () => {
  await cluster.close();
  killAll();
  rmSync(markers, { recursive: true, force: true });
});

type Part = { event: string; id?: string | undefined; data?: unknown };
const isDone = (part: Part) => part.event === "metadata" && (part.data as { status?: string }).status === "run_done";

/** Reads until `stop` says so; a broken connection ends the reading too (with what came before it). */
async function readUntil(stream: AsyncIterable<Part>, stop: (parts: Part[]) => boolean, parts: Part[] = []): Promise<{ parts: Part[]; broken: boolean }> {
  try {
    for await (const part of stream) {
      parts.push(part);
      if (stop(parts)) break;
    }
    return { parts, broken: false };
  } catch {
    return { parts, broken: true };
  }
}

describe("thread streams in scale-out", () => {
  it("resume on another API process after the first is SIGKILLed, with exactly the missed events", async () => {
    const thread = await apiA.client.threads.create();
    const fileA = marker("first");
    const fileB = marker("second");
    const first = await apiA.client.runs.create(thread.thread_id, "two_step", { input: human(`go file:${fileA}`), streamMode: ["updates", "values"] });
    const second = await apiA.client.runs.create(thread.thread_id, "two_step", { input: human(`go file:${fileB}`), streamMode: ["updates", "values"], multitaskStrategy: "enqueue" });

    // Read from process A until the first run's first step is out (its second step waits for fileA).
    const received: Part[] = [];
    const reading = readUntil(apiA.client.threads.joinStream(thread.thread_id, { lastEventId: "-" }), () => false, received);
    await expect.poll(() => received.some((p) => p.event === "updates" && "first" in (p.data as object)), { timeout: 20_000 }).toBe(true);
    await apiA.stop("SIGKILL");
    const cut = await reading;
    expect(cut.broken).toBe(true);
    const seen = cut.parts.length;

    // While nobody reads, both runs go on and end.
    writeFileSync(fileA, "");
    writeFileSync(fileB, "");
    await apiB.client.runs.join(thread.thread_id, first.run_id);
    await apiB.client.runs.join(thread.thread_id, second.run_id);

    const rest = await readUntil(apiB.client.threads.joinStream(thread.thread_id, { lastEventId: cut.parts.at(-1)!.id! }), (parts) => parts.filter(isDone).length === 2);
    const all = await readUntil(apiB.client.threads.joinStream(thread.thread_id, { lastEventId: "-" }), (parts) => parts.filter(isDone).length === 2);
    expect(rest.broken).toBe(false);
    expect([...cut.parts.slice(0, seen), ...rest.parts].map((p) => p.id)).toEqual(all.parts.map((p) => p.id));
    expect([...cut.parts.slice(0, seen), ...rest.parts].map((p) => p.event)).toEqual(all.parts.map((p) => p.event));
    const done = all.parts.filter(isDone).map((p) => p.data as { run_id: string; run_status: string });
    expect(done).toEqual([
      { run_id: first.run_id, status: "run_done", run_status: "success" },
      { run_id: second.run_id, status: "run_done", run_status: "success" },
    ]);
  });

  it("a protocol v2 WebSocket client whose API process is SIGKILLed mid-run resumes on another with since, with exactly the missed events", async () => {
    const apiC = await cluster.start("api");
    const threadId = crypto.randomUUID();
    const file = marker("protocol");
    const channels = ["lifecycle", "values", "updates"];
    const first = await openSocket(apiC.url, threadId);
    await first.send("subscription.subscribe", { channels });
    const started = await first.send("run.start", { assistant_id: "two_step", input: human(`go file:${file}`) });
    expect(started.type).toBe("success");
    // The first step is out; the second waits for the file. The process dies mid-run.
    await first.until(() => first.events().some((e) => e.method === "updates" && e.params.node === "first"));
    const before = first.events();
    await apiC.stop("SIGKILL");
    writeFileSync(file, "");
    await apiB.client.runs.join(threadId, started.result.run_id as string);

    const second = await openSocket(apiB.url, threadId);
    await second.send("subscription.subscribe", { channels, since: before.at(-1)!.seq });
    await second.until(() => second.events().some((e) => e.method === "lifecycle" && e.params.data.event === "completed"));
    const replay = await openSocket(apiB.url, threadId);
    await replay.send("subscription.subscribe", { channels, since: 0 });
    await replay.until(() => replay.events().some((e) => e.method === "lifecycle" && e.params.data.event === "completed"));
    expect([...before, ...second.events()].map((e) => e.seq)).toEqual(replay.events().map((e) => e.seq));
    expect(replay.events().filter((e) => e.method === "updates").map((e) => e.params.node)).toEqual(["first", "second"]);
    second.ws.close();
    replay.ws.close();
  });
});

interface ProtocolEvent {
  type: "event";
  seq: number;
  method: string;
  params: { namespace: string[]; data: Record<string, unknown>; node?: string };
}

/** A protocol WebSocket on one API process: commands answered in order, its events, and a way to wait for some. */
async function openSocket(url: string, threadId: string) {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/threads/${threadId}/stream/events`);
  const messages: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  ws.on("message", (data: Buffer) => {
    messages.push(JSON.parse(data.toString("utf8")) as Record<string, unknown>);
    for (const wake of waiters) wake();
  });
  // A killed process cuts the socket: later waits fail instead of hanging.
  ws.on("close", () => {
    for (const wake of waiters) wake();
  });
  ws.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const until = async (check: () => boolean) => {
    while (!check()) {
      if (ws.readyState !== ws.OPEN) throw new Error("the socket closed");
      await new Promise<void>((resolve) => waiters.add(resolve)).finally(() => waiters.clear());
    }
  };
  let nextId = 1;
  const send = async (method: string, params: Record<string, unknown>) => {
    const id = nextId++;
    ws.send(JSON.stringify({ id, method, params }));
    await until(() => messages.some((m) => m.id === id));
    return messages.find((m) => m.id === id) as { type: string; result: Record<string, unknown> };
  };
  const events = () => messages.filter((m) => m.type === "event") as unknown as ProtocolEvent[];
  return { ws, send, until, events };
}
