/**
 * Baton's SQLite checkpoint saver against the official
 * `@langchain/langgraph-checkpoint-sqlite` saver: the same echo graph, the
 * same number of runs, each saver on its own better-sqlite3 file (WAL).
 * Prints runs/s and per-run latency percentiles for each.
 *
 *   node --import tsx bench/savers.ts [runs=2000] [turns per thread=10]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AIMessage, HumanMessage } from "@langchain/core/messages";
import { END, MessagesAnnotation, START, StateGraph } from "@langchain/langgraph";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import { SqliteSaver } from "@langchain/langgraph-checkpoint-sqlite";
import Database from "better-sqlite3";
import { SqliteCheckpointer } from "../src/backends/sqlite/checkpointer.ts";
import { openDatabase } from "../src/backends/sqlite/database.ts";

const runs = Number(process.argv[2] ?? 2000);
const turns = Number(process.argv[3] ?? 10);

const graph = new StateGraph(MessagesAnnotation)
  .addNode("echo", (s) => ({ messages: [new AIMessage(`echo: ${JSON.stringify(s.messages.at(-1)?.content ?? "")}`)] }))
  .addEdge(START, "echo")
  .addEdge("echo", END)
  .compile();

async function measure(name: string, saver: BaseCheckpointSaver) {
  const g = graph.withConfig({});
  (g as unknown as { checkpointer: BaseCheckpointSaver }).checkpointer = saver;
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 0; i < runs; i++) {
    const thread_id = `t${Math.floor(i / turns)}`;
    const t0 = performance.now();
    await g.invoke({ messages: [new HumanMessage(`m${i}`)] }, { configurable: { thread_id }, metadata: { run_id: `r${i}` } });
    latencies.push(performance.now() - t0);
  }
  const totalMs = performance.now() - started;
  latencies.sort((a, b) => a - b);
  const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!.toFixed(2);
  return { saver: name, runs, runs_per_s: Math.round((runs / totalMs) * 1000), p50_ms: p(0.5), p95_ms: p(0.95), p99_ms: p(0.99) };
}

const dir = mkdtempSync(join(tmpdir(), "baton-savers-"));
try {
  const ours = openDatabase({ path: join(dir, "baton.sqlite"), busyTimeoutMs: 5000 });
  const official = new Database(join(dir, "official.sqlite"));
  const results = [];
  // Warm both up, then measure each twice in alternation to even out noise.
  await measure("warm-up", new SqliteCheckpointer(openDatabase({ path: ":memory:", busyTimeoutMs: 0 })));
  for (let round = 0; round < 2; round++) {
    results.push(await measure("baton SqliteCheckpointer", new SqliteCheckpointer(ours)));
    results.push(await measure("official SqliteSaver", new SqliteSaver(official)));
  }
  console.table(results);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
