/**
 * `npm run bench:profile -- [throughput|long-wait|streams] [--rounds N] [--clients N]`
 *
 * Starts Baton under `node --cpu-prof` on the benchmark graphs, warms it up,
 * runs one scenario `rounds` times, stops it, and prints where the server's
 * CPU went, for each thread that was busy (the HTTP thread and the
 * execution threads): self time by package and by function, and inclusive
 * time of Baton's own functions, HTTP and SQLite. The .cpuprofile file is kept (its
 * path is printed) for a flame graph in Chrome DevTools or speedscope.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as sc from "./scenarios.ts";
import { freePort, waitUntilUp } from "./targets.ts";

const { values, positionals } = parseArgs({ allowPositionals: true, options: { rounds: { type: "string", default: "3" }, clients: { type: "string", default: "64" } } });
const scenario = positionals[0] ?? "throughput";
const rounds = Number(values.rounds);
const root = join(import.meta.dirname, "..");

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

async function main() {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "baton-profile-"));
  const profDir = mkdtempSync(join(tmpdir(), "baton-cpuprof-"));
  const args = ["--cpu-prof", `--cpu-prof-dir=${profDir}`, join(root, "bin/baton.js"), "serve", "--config", join(root, "bench/graphs/langgraph.json")];
  const env = { ...process.env };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  const child = spawn(process.execPath, [...args, "--port", String(port), "--data-dir", dataDir, "--log-level", "warn"], { stdio: "inherit", env });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntilUp(url, child, () => "", 60_000);
    await sc.throughput(url, 4, 1_000);
    for (let i = 0; i < rounds; i++) {
      const result =
        scenario === "long-wait" ? await sc.longWait(url, 200, 60_000)
        : scenario === "streams" ? await sc.streams(url, 100, true)
        : await sc.throughput(url, Number(values.clients), 5_000);
      console.log(scenario, JSON.stringify(result));
    }
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
    rmSync(dataDir, { recursive: true, force: true });
  }
  // One profile per thread: the HTTP thread, each execution thread, and tsx's
  // loader threads (which are idle once the graphs are loaded). Every thread
  // that was busy for a tenth of the busiest one's time is summarised.
  const profiles = readdirSync(profDir)
    .map((name) => join(profDir, name))
    .map((file) => ({ file, profile: JSON.parse(readFileSync(file, "utf8")) as Profile }))
    .map((p) => ({ ...p, busy: busyTime(p.profile) }))
    .sort((a, b) => b.busy - a.busy);
  if (profiles.length === 0) throw new Error("no profile was written");
  for (const p of profiles.filter((p) => p.busy >= profiles[0]!.busy / 10)) {
    console.log(`\n=== ${p.file} ===`);
    summarize(p.profile);
  }
}

/** Microseconds of samples not in (idle). */
function busyTime(profile: Profile): number {
  const idle = new Set(profile.nodes.filter((n) => n.callFrame.functionName === "(idle)").map((n) => n.id));
  return profile.samples.reduce((sum, id, i) => sum + (idle.has(id) ? 0 : (profile.timeDeltas[i] ?? 0)), 0);
}

function summarize(profile: Profile) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(id, (self.get(id) ?? 0) + dt);
    total += dt;
  });
  const name = (n: ProfileNode) =>
    `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.replace(/^.*node_modules\//, "").replace(`file://${root}/`, "")}:${n.callFrame.lineNumber + 1}`;
  const pkg = (n: ProfileNode) => {
    const url = n.callFrame.url;
    const inModules = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url);
    if (inModules) return inModules[1]!;
    if (url.includes("/src/")) return `baton ${url.slice(url.indexOf("/src/") + 1)}`;
    if (url.startsWith("node:")) return url.split("/")[0]!;
    return url === "" ? n.callFrame.functionName : "other";
  };
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, t: number) => map.set(key, (map.get(key) ?? 0) + t);
  for (const [id, t] of self) {
    const node = nodes.get(id)!;
    add(byPackage, pkg(node), t);
    add(byFunction, name(node), t);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const key = name(nodes.get(cur)!);
      if (!seen.has(key)) add(inclusive, key, t);
      seen.add(key);
    }
  }
  const idle = byPackage.get("(idle)") ?? 0;
  const busy = total - idle;
  const top = (title: string, map: Map<string, number>, n: number, keep: (key: string) => boolean = () => true) => {
    console.log(`\n${title} (% of busy CPU, ${(busy / 1e6).toFixed(1)} s busy of ${(total / 1e6).toFixed(1)} s)`);
    for (const [key, t] of [...map].filter(([key]) => !key.startsWith("(idle)") && keep(key)).sort((a, b) => b[1] - a[1]).slice(0, n)) {
      console.log(`${((t / busy) * 100).toFixed(1).padStart(6)} %  ${key}`);
    }
  };
  top("self time by package", byPackage, 20);
  top("self time by function", byFunction, 25);
  top("inclusive time, Baton / HTTP / SQLite", inclusive, 30, (key) => key.includes(" src/") || /^(\S+) (hono|@hono|better-sqlite3)\//.test(key));
}

await main();
