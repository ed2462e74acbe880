/**
 * `node --import tsx bench/stalled-readers.ts [--readers 8] [--input-mb 8]`
 *
 * Memory held for stream readers that stop reading (issue 11, finding 6).
 * Starts Baton on the benchmark graphs, runs one resumable `echo` run whose
 * events carry a large input (every stream mode, so each event is a copy of
 * the state), then joins its stream with `--readers` clients whose sockets
 * are paused after the response headers (real TCP backpressure), and prints
 * the server's RSS: before, while the readers are stalled, once the server
 * has dropped them (it logs `stream:reader-dropped`; a reader may hold
 * `streamBufferBytes`, and is dropped after a keep-alive interval with a
 * full buffer), and a few seconds after the clients closed. For comparison,
 * the same number of readers reading everything.
 *
 * BATON_STREAM_BUFFER_BYTES and BATON_KEEP_ALIVE_MS in the environment
 * reach the server.
 */
import { request, type ClientRequest } from "node:http";
import { parseArgs } from "node:util";
import { startBaton, treeRssBytes } from "./targets.ts";

const { values } = parseArgs({ options: { readers: { type: "string", default: "8" }, "input-mb": { type: "string", default: "8" } } });
const readers = Number(values.readers);
const inputMb = Number(values["input-mb"]);

const mb = (bytes: number) => Math.round(bytes / 1e6);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function json<T>(url: string, body?: unknown): Promise<T> {
  const response = await fetch(url, body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** Joins `url` and stops reading once the headers are in; resolves when the server cut the connection or `stop` is called. */
function stalledReader(url: string): { ready: Promise<void>; request: ClientRequest } {
  let ready!: () => void;
  const readyPromise = new Promise<void>((resolve) => (ready = resolve));
  const req = request(url, (response) => {
    response.pause();
    response.socket.pause();
    response.on("error", () => undefined);
    ready();
  });
  req.on("error", () => undefined);
  req.end();
  return { ready: readyPromise, request: req };
}

const target = await startBaton(16);
try {
  const base = target.url;
  const thread = await json<{ thread_id: string }>(`${base}/threads`, {});
  // Messages of 1 MB (a string may be 4 MiB at most by default).
  const messages = Array.from({ length: inputMb }, () => ({ role: "user", content: "x".repeat(1024 * 1024) }));
  const run = await json<{ run_id: string }>(`${base}/threads/${thread.thread_id}/runs`, {
    assistant_id: "echo",
    input: { messages },
    stream_mode: ["values", "updates", "checkpoints", "tasks", "debug"],
    stream_resumable: true,
  });
  await json(`${base}/threads/${thread.thread_id}/runs/${run.run_id}/join`);
  const streamUrl = `${base}/threads/${thread.thread_id}/runs/${run.run_id}/stream`;
  const full = await (await fetch(streamUrl)).text();
  await sleep(2_000);
  const before = treeRssBytes(target.pid);

  const stalled = Array.from({ length: readers }, () => stalledReader(streamUrl));
  await Promise.all(stalled.map((r) => r.ready));
  await sleep(1_000);
  const stalledRss = treeRssBytes(target.pid);
  // A stalled reader is dropped after one keep-alive interval with a full buffer (5 s by default).
  await sleep(Number(process.env.BATON_KEEP_ALIVE_MS ?? 5_000) * 2 + 1_000);
  const afterDrop = treeRssBytes(target.pid);
  for (const r of stalled) r.request.destroy();
  await sleep(5_000);
  const afterClose = treeRssBytes(target.pid);

  const reading = await Promise.all(Array.from({ length: readers }, async () => (await (await fetch(streamUrl)).text()).length));
  await sleep(2_000);
  const afterReading = treeRssBytes(target.pid);

  const row = {
    readers,
    run_events_mb: mb(Buffer.byteLength(full)),
    rss_before_mb: mb(before),
    rss_stalled_mb: mb(stalledRss),
    rss_after_drop_mb: mb(afterDrop),
    rss_after_close_mb: mb(afterClose),
    reading_readers_got_everything: reading.every((n) => n === full.length),
    rss_after_reading_readers_mb: mb(afterReading),
  };
  process.stdout.write(`${JSON.stringify(row, null, 2)}\n`);
} finally {
  await target.stop();
}
