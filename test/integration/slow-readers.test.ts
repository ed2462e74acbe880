/**
 * Issue 11, finding 6: a stream reader that stops reading must not make the
 * server hold its run's events. A server with a small `streamBufferBytes`
 * streams a run of about 50 MB of events to a reader whose socket is paused
 * (TCP backpressure is real): that reader is dropped and its buffer released,
 * while a normal reader of the same run, and a late one replaying the whole
 * run through the small buffer, get every event; the dropped client resumes
 * with Last-Event-ID and gets exactly what it missed.
 */
import { request, type IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { gate } from "../fixtures/graphs/graphs.ts";
import { startServer, type TestServer } from "../helpers/server.ts";

const BUFFER_BYTES = 64 * 1024;

let t: TestServer;
/** Log lines of this file's servers (they log JSON to stderr). */
const logs: Record<string, unknown>[] = [];
beforeAll(async () => {
  const write = process.stderr.write.bind(process.stderr);
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
    for (const line of String(chunk).split("\n")) {
      if (line.startsWith("{")) {
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not one of ours
        }
      }
    }
    return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  });
  // keepAliveMs is also the time a reader with a full buffer may take nothing before it is dropped.
  t = await startServer({ streamBufferBytes: BUFFER_BYTES, keepAliveMs: 2_000 });
});
afterAll(async () => {
  await t?.close();
  vi.restoreAllMocks();
});

type Part = { event: string; id?: string | undefined; data?: unknown };
async function collect(iterable: AsyncIterable<Part>): Promise<Part[]> {
  const parts: Part[] = [];
  for await (const part of iterable) parts.push(part);
  return parts;
}

/** Complete SSE events in `text` (comments skipped; a cut-off last one left out). */
function parseEvents(text: string): { id: string; event: string }[] {
  const blocks = text.split("\n\n");
  blocks.pop(); // after the last separator: incomplete, or empty
  return blocks
    .map((block) => {
      const field = (name: string) => block.split("\n").find((line) => line.startsWith(`${name}: `))?.slice(name.length + 2);
      return { id: field("id") ?? "", event: field("event") ?? "" };
    })
    .filter((e) => e.event !== "");
}

/**
 * Joins the run's stream with node:http, reads until it has `events`
 * complete events, then stops reading: its socket is paused, so the server
 * meets real TCP backpressure.
 */
function stallingReader(url: string, events: number) {
  return new Promise<{ text: string; closed: Promise<void>; response: IncomingMessage }>((resolve, reject) => {
    const req = request(url, { headers: { Accept: "text/event-stream" } }, (response) => {
      let text = "";
      const closed = new Promise<void>((done) => {
        response.once("close", done);
        response.once("error", () => done());
      });
      const onData = (chunk: Buffer) => {
        text += chunk.toString("utf8");
        if (parseEvents(text).length >= events) {
          response.pause();
          response.socket.pause();
          response.off("data", onData);
          resolve({ text, closed, response });
        }
      };
      response.on("data", onData);
      response.once("error", reject);
    });
    req.once("error", reject);
    req.end();
  });
}

describe("slow stream readers", () => {
  it("a stalled reader is dropped and its buffer released; others get every event; it resumes with exactly the rest", async () => {
    const thread = await t.client.threads.create();
    const name = `slow-${crypto.randomUUID()}`;
    const g = gate(name);
    // Every event carries the state, about 4 MB: about 22 events, 50 MB in all.
    const big = { role: "user", content: "x".repeat(1024 * 1024) };
    const run = await t.client.runs.create(thread.thread_id, "gated", {
      input: { messages: [big, big, big, big, { role: "user", content: `gate:${name}` }] },
      streamMode: ["values", "updates", "checkpoints", "tasks", "debug"],
      streamResumable: true,
    });
    await expect.poll(() => g.entered, { timeout: 20_000 }).toBe(1);

    const streamUrl = `${t.url}/threads/${thread.thread_id}/runs/${run.run_id}/stream`;
    const stalled = await stallingReader(streamUrl, 2);
    const normal = collect(t.client.runs.joinStream(thread.thread_id, run.run_id));
    g.open();
    const normalParts = await normal;

    // The stalled reader is dropped: logged with the bytes it had waiting, and its connection ended.
    const dropped = await vi.waitFor(
      () => {
        const line = logs.find((l) => l.msg === "stream:reader-dropped" && l.run_id === run.run_id);
        if (line === undefined) throw new Error("not dropped yet");
        return line;
      },
      { timeout: 25_000, interval: 50 },
    );
    expect(dropped.bytes).toBeGreaterThanOrEqual(BUFFER_BYTES);
    // The client, reading again, finds its stream cut short: not ended, which would say the run is over.
    stalled.response.on("data", () => {});
    stalled.response.socket.resume();
    stalled.response.resume();
    await stalled.closed;
    expect(stalled.response.complete).toBe(false);

    // Everything a stream held for its reader is released once the streams are over.
    const full = await collect(t.client.runs.joinStream(thread.thread_id, run.run_id));
    const seen = parseEvents(stalled.text);
    const rest = await collect(t.client.runs.joinStream(thread.thread_id, run.run_id, { lastEventId: seen.at(-1)!.id }));
    await expect.poll(() => t.server.streamStats.open).toBe(0);
    expect(t.server.streamStats.bufferedBytes).toBe(0);

    const ids = (parts: { id?: string | undefined }[]) => parts.map((p) => p.id);
    expect(full.length).toBeGreaterThan(10);
    // The whole run: its last values hold the reply.
    expect(full.filter((p) => p.event === "values").map((p) => (p.data as { messages: unknown[] }).messages.length).at(-1)).toBe(6);
    // The normal reader of the live run, and a late one replaying it all through the small buffer, got every event.
    expect(ids(normalParts)).toEqual(ids(full));
    // The dropped client's events and its resumed ones are exactly the run's events: no gap, no repeat.
    expect([...ids(seen), ...ids(rest)]).toEqual(ids(full));
    // Only the stalled reader was dropped.
    expect(logs.filter((l) => l.msg === "stream:reader-dropped" && l.run_id === run.run_id)).toHaveLength(1);
  });
});
