/** C7 and C8: cancels stop runs promptly; every subscriber gets every event; Last-Event-ID resumes exactly. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gate } from "../fixtures/graphs/graphs.ts";
import { human, startGatedRun, startServer, type TestServer } from "../helpers/server.ts";

let t: TestServer;
beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => {
  await t.close();
});

const gatedRun = async (streamResumable = false) => {
  const { thread, run, gate: g } = await startGatedRun(t.client, { streamMode: ["values", "updates"], streamResumable });
  return { thread, run, g };
};

type Part = { event: string; id?: string | undefined; data?: unknown };
async function collect(iterable: AsyncIterable<Part>) {
  const parts: Part[] = [];
  for await (const part of iterable) parts.push(part);
  return parts;
}

describe("streams", () => {
  it("two joiners of one run both get every event, in order", async () => {
    // Resumable, so that a joiner whose request lands after the run ended still reads it all.
    const { thread, run, g } = await gatedRun(true);
    const a = collect(t.client.runs.joinStream(thread.thread_id, run.run_id));
    const b = collect(t.client.runs.joinStream(thread.thread_id, run.run_id));
    await new Promise((resolve) => setImmediate(resolve));
    g.open();
    const [pa, pb] = await Promise.all([a, b]);
    expect(pa.map((p) => p.id)).toEqual(pb.map((p) => p.id));
    expect(pa.map((p) => p.event)).toEqual(pb.map((p) => p.event));
    expect(pa[0]!.event).toBe("metadata");
    expect(pa.filter((p) => p.event === "updates").map((p) => Object.keys(p.data as object))).toEqual([["wait"], ["reply"]]);
    expect(pa.filter((p) => p.event === "values").length).toBeGreaterThanOrEqual(2);
  });

  it("Last-Event-ID resumes with exactly the rest, after the end for a resumable stream", async () => {
    const { thread, run, g } = await gatedRun(true);
    g.open();
    const all = await collect(t.client.runs.joinStream(thread.thread_id, run.run_id));
    const cut = all[1]!.id!;
    const rest = await collect(t.client.runs.joinStream(thread.thread_id, run.run_id, { lastEventId: cut }));
    expect(rest.map((p) => p.id)).toEqual(all.slice(2).map((p) => p.id));
  });

  it("a run that was not resumable frees its events at the end; a late joiner gets an empty stream, join its output", async () => {
    const { thread, run, g } = await gatedRun(false);
    g.open();
    const output = (await t.client.runs.join(thread.thread_id, run.run_id)) as { messages: unknown[] };
    expect(output.messages).toHaveLength(2);
    expect(await collect(t.client.runs.joinStream(thread.thread_id, run.run_id))).toEqual([]);
  });

  it("sends keep-alives while a run is quiet: SSE comments on streams, newlines on wait", async () => {
    const quick = await startServer({ keepAliveMs: 100 });
    try {
      const thread = await quick.client.threads.create();
      const name = `ka-${crypto.randomUUID()}`;
      const g = gate(name);
      const response = await fetch(`${quick.url}/threads/${thread.thread_id}/runs/stream`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ assistant_id: "gated", input: human(`gate:${name}`) }),
      });
      const reader = response.body!.getReader();
      let text = "";
      while (!text.includes(": heartbeat")) text += new TextDecoder().decode((await reader.read()).value);
      g.open();
      while (!(await reader.read()).done);
      expect(response.headers.get("content-location")).toMatch(/^\/threads\/.+\/runs\/[^/]+$/);

      // wait answers 200 at once, keeps the connection alive with newlines, then the run's own values.
      const name2 = `kaw-${crypto.randomUUID()}`;
      const g2 = gate(name2);
      const waiting = await fetch(`${quick.url}/threads/${thread.thread_id}/runs/wait`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ assistant_id: "gated", input: human(`gate:${name2}`) }),
      });
      expect(waiting.status).toBe(200);
      const waitReader = waiting.body!.getReader();
      const first = new TextDecoder().decode((await waitReader.read()).value);
      expect(first).toBe("\n");
      g2.open();
      let body = first;
      for (let chunk = await waitReader.read(); !chunk.done; chunk = await waitReader.read()) body += new TextDecoder().decode(chunk.value);
      const values = JSON.parse(body) as { messages: { content: string }[] };
      expect(values.messages.at(-1)!.content).toBe(`echo: gate:${name2}`);
    } finally {
      await quick.close();
    }
  });
});

describe("cancel", () => {
  it("stops a running run, and wait=true returns when it is final", async () => {
    // The gate never opens: only the cancel can end this run (how fast is the benchmark's business, not a test's).
    const { thread, run } = await gatedRun();
    await t.client.runs.cancel(thread.thread_id, run.run_id, true);
    expect((await t.client.runs.get(thread.thread_id, run.run_id)).status).toBe("interrupted");
    expect((await t.client.threads.get(thread.thread_id)).status).toBe("idle");
  });

  it("wait=false answers 202 at once; the run still ends interrupted", async () => {
    const { thread, run } = await gatedRun();
    const response = await fetch(`${t.url}/threads/${thread.thread_id}/runs/${run.run_id}/cancel?wait=0`, { method: "POST" });
    expect(response.status).toBe(202);
    await t.client.runs.join(thread.thread_id, run.run_id);
    expect((await t.client.runs.get(thread.thread_id, run.run_id)).status).toBe("interrupted");
  });

  it("rollback cancel erases the run", async () => {
    const { thread, run } = await gatedRun();
    await t.client.runs.cancel(thread.thread_id, run.run_id, true, "rollback");
    await expect(t.client.runs.get(thread.thread_id, run.run_id)).rejects.toThrow(/404/);
  });

  it("bulk cancel stops every in-flight run of a thread", async () => {
    const { thread, run } = await gatedRun();
    const queued = await t.client.runs.create(thread.thread_id, "echo", { input: human("queued"), streamResumable: true });
    await t.client.runs.cancelMany({ threadId: thread.thread_id, status: "all" });
    await t.client.runs.join(thread.thread_id, run.run_id);
    expect((await t.client.runs.get(thread.thread_id, queued.run_id)).status).toBe("interrupted");
    expect((await t.client.runs.get(thread.thread_id, run.run_id)).status).toBe("interrupted");
    // The queued run was resumable: a client that reconnects after the cancel still reads how it ended.
    const parts = await collect(t.client.runs.joinStream(thread.thread_id, queued.run_id, { lastEventId: "-" }));
    expect(parts.filter((p) => p.event === "error")).toHaveLength(1);
  });

  it.each(["stream", "wait"])("a client that leaves /runs/%s cancels its run when on_disconnect=cancel", async (endpoint) => {
    const thread = await t.client.threads.create();
    const name = `dc-${endpoint}-${crypto.randomUUID()}`;
    const g = gate(name);
    const abort = new AbortController();
    const response = await fetch(`${t.url}/threads/${thread.thread_id}/runs/${endpoint}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ assistant_id: "gated", input: human(`gate:${name}`), on_disconnect: "cancel" }),
      signal: abort.signal,
    });
    const runId = /runs\/([^/]+)$/.exec(response.headers.get("content-location")!)![1]!;
    await expect.poll(() => g.entered).toBe(1);
    abort.abort();
    await expect.poll(async () => (await t.client.runs.get(thread.thread_id, runId)).status).toBe("interrupted");
  });

  it("stops a run that outlives runTimeoutMs with status timeout", async () => {
    const short = await startServer({ runTimeoutMs: 1000 });
    try {
      const thread = await short.client.threads.create();
      const name = `to-${crypto.randomUUID()}`;
      const run = await short.client.runs.create(thread.thread_id, "gated", { input: human(`gate:${name}`) });
      await expect(short.client.runs.join(thread.thread_id, run.run_id)).resolves.toMatchObject({ __error__: { error: "TimeoutError" } });
      expect((await short.client.runs.get(thread.thread_id, run.run_id)).status).toBe("timeout");
      expect((await short.client.threads.get(thread.thread_id)).status).toBe("error");
    } finally {
      await short.close();
    }
  });
});
