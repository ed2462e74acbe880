/**
 * CI's performance regression guard: a quick case measured side by side with
 * the in-process limit in the same run, judged by ratios (never by absolute
 * times, which depend on the machine). Fails on a large drop, not on noise.
 *
 *   node --import tsx bench/guard.ts
 */
import * as sc from "./scenarios.ts";
import { startBaton } from "./targets.ts";

/** The floors: figures on the 2-core dev machine are about 1.0-1.6x (p50) and 0.5-0.9 (runs/s) for one client. */
const MAX_P50_RATIO = 4;
const MIN_THROUGHPUT_RATIO = 0.25;
const DURATION_MS = 3_000;

const failures: string[] = [];
// Warm up both, then measure.
await sc.throughputInProcess(1, 500);
const inProcess = await sc.throughputInProcess(1, DURATION_MS);
const baton = await startBaton(64);
try {
  await sc.throughput(baton.url, 1, 500);
  const served = await sc.throughput(baton.url, 1, DURATION_MS);
  const p50Ratio = served.p50_ms / inProcess.p50_ms;
  const throughputRatio = served.runs_per_s / inProcess.runs_per_s;
  console.log(`one client: Baton p50 ${served.p50_ms} ms, ${served.runs_per_s} runs/s; in-process p50 ${inProcess.p50_ms} ms, ${inProcess.runs_per_s} runs/s`);
  console.log(`ratios: p50 ${p50Ratio.toFixed(2)}x (limit ${MAX_P50_RATIO}x), throughput ${throughputRatio.toFixed(2)} (floor ${MIN_THROUGHPUT_RATIO})`);
  if (served.errors > 0) failures.push(`${served.errors} errors in the throughput case`);
  if (p50Ratio > MAX_P50_RATIO) failures.push(`p50 is ${p50Ratio.toFixed(2)}x the in-process limit (limit ${MAX_P50_RATIO}x)`);
  if (throughputRatio < MIN_THROUGHPUT_RATIO) failures.push(`throughput is ${throughputRatio.toFixed(2)} of the in-process limit (floor ${MIN_THROUGHPUT_RATIO})`);
  for (const strategy of ["reject", "enqueue", "interrupt", "rollback"] as const) {
    const audit = await sc.sameThreadBurst(baton.url, strategy, 20, 60_000);
    const bad = audit.empty + audit.foreign + audit.lost + audit.duplicated;
    console.log(`same-thread ${strategy} x20: ${JSON.stringify(audit.statuses)}, empty/foreign/lost/duplicated ${audit.empty}/${audit.foreign}/${audit.lost}/${audit.duplicated}`);
    if (bad > 0) failures.push(`same-thread ${strategy}: ${bad} bad answers`);
  }
} finally {
  await baton.stop();
}
if (failures.length > 0) {
  console.error(`performance guard FAILED:\n- ${failures.join("\n- ")}`);
  process.exit(1);
}
console.log("performance guard passed");
