/**
 * `npm run bench:threads -- [throughput|long-wait|streams|inprocess] [--execution-threads N]`
 *
 * Starts Baton on the benchmark graphs, runs one scenario, and prints for
 * every thread of the server process the CPU time it used and the time it
 * spent runnable but waiting for a core (Linux `/proc/<pid>/task/<tid>/stat`
 * and `schedstat`), in seconds and per run. Shows whether a case is bound
 * by one thread's work or by the machine's cores being contended. The main
 * thread serves HTTP; with execution threads on, the busiest other thread is
 * the execution thread, and V8's platform threads (garbage collection) are
 * the group of similar, smaller ones. `inprocess` runs the 64-client case
 * of the in-process limit instead and prints this process's CPU per run
 * (all its threads), the figure to hold Baton's sum against.
 */
import { readdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import * as sc from "./scenarios.ts";
import { startBaton, statCpuSeconds } from "./targets.ts";

const { values, positionals } = parseArgs({ allowPositionals: true, options: { "execution-threads": { type: "string" } } });
const scenario = positionals[0] ?? "throughput";

interface ThreadTimes {
  cpu: number;
  waiting: number;
}

function threadTimes(pid: number): Map<number, ThreadTimes> {
  const out = new Map<number, ThreadTimes>();
  for (const tid of readdirSync(`/proc/${pid}/task`).map(Number)) {
    try {
      // schedstat: time on a core, time runnable but waiting for one (ns), timeslices.
      const schedstat = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ");
      out.set(tid, { cpu: statCpuSeconds(`/proc/${pid}/task/${tid}/stat`), waiting: Number(schedstat[1]) / 1e9 });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

if (scenario === "inprocess") {
  const cpu0 = process.cpuUsage();
  const result = await sc.throughputInProcess(64, 10_000);
  const cpu = process.cpuUsage(cpu0);
  const seconds = (cpu.user + cpu.system) / 1e6;
  console.log("inprocess", JSON.stringify(result));
  console.log(`in-process limit: ${seconds.toFixed(2)} CPU-s, ${((seconds * 1000) / result.runs).toFixed(2)} ms per run`);
  process.exit(0);
}

const target = await startBaton(256, values["execution-threads"]);
try {
  await sc.throughput(target.url, 4, 1_000);
  const before = threadTimes(target.pid);
  const harness0 = process.cpuUsage();
  const result =
    scenario === "long-wait" ? await sc.longWait(target.url, 200, 60_000)
    : scenario === "streams" ? await sc.streams(target.url, 100, true)
    : await sc.throughput(target.url, 64, 10_000);
  const after = threadTimes(target.pid);
  const harness = process.cpuUsage(harness0);
  const runs = "runs" in result ? result.runs : 100;
  console.log(scenario, JSON.stringify(result));
  const rows = [...after]
    .map(([tid, t]) => {
      const b = before.get(tid) ?? { cpu: 0, waiting: 0 };
      return { tid, cpu: t.cpu - b.cpu, waiting: t.waiting - b.waiting };
    })
    .filter((r) => r.cpu >= 0.05)
    .sort((a, b) => b.cpu - a.cpu)
    .map((r) => ({
      thread: r.tid === target.pid ? `${r.tid} (main: HTTP)` : String(r.tid),
      cpu_s: +r.cpu.toFixed(2),
      waiting_for_core_s: +r.waiting.toFixed(2),
      cpu_ms_per_run: +((r.cpu * 1000) / runs).toFixed(2),
    }));
  console.table(rows);
  console.log(`harness (the clients): ${((harness.user + harness.system) / 1e6).toFixed(2)} CPU-s`);
} finally {
  await target.stop();
}
