/**
 * `baton doctor`: runs each of start-up's checks on its own (langgraph.json,
 * the LangChain packages, every graph, authentication, the store's index, the database and its
 * migrations, Redis, the ports) without serving or changing anything, and
 * prints one line per check: `ok:` or `problem:` with the fix. Every check
 * runs even when an earlier one failed, so one pass lists every problem.
 */
import { createServer as createNetServer } from "node:net";
import { loadProject, type Config, type LoadedProject } from "../config.ts";
import { nativeModuleMismatch } from "../node-lines.js";
import { probes } from "../server.ts";

/** One check's result: a problem carries the fix. */
export interface Finding {
  check: string;
  ok: boolean;
  /** What was found. */
  message: string;
  /** What to do about a problem. */
  fix?: string;
}

/** How long the database may take to answer before the check fails. */
const DATABASE_TIMEOUT_MS = 10_000;

/** An error's message on one line, without its closing period (the line goes on with the fix). */
const messageOf = (error: unknown) =>
  (error instanceof Error ? error.message : String(error))
    .replace(/\s+/g, " ")
    .trim()
    .replace(/\.$/, "");

/** `work`, or a rejection naming `what` after `ms`. */
async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether this process could listen on `port` of `host` (then frees it at once). */
function portFree(host: string, port: number): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const server = createNetServer();
    server.once("error", (error: NodeJS.ErrnoException) => resolve(error));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

async function checkPort(findings: Finding[], name: string, flag: string, host: string, port: number): Promise<void> {
  if (port === 0) {
    findings.push({ check: name, ok: true, message: "0: a free port is picked at start" });
    return;
  }
  const error = await portFree(host, port);
  if (error === null) {
    findings.push({ check: name, ok: true, message: `${port} on ${host} is free` });
  } else if (error.code === "EADDRINUSE") {
    findings.push({ check: name, ok: false, message: `${port} on ${host} is already in use by another process`, fix: `stop that process, or pass another ${flag} (0 picks a free one)` });
  } else if (error.code === "EADDRNOTAVAIL") {
    findings.push({ check: name, ok: false, message: `${host} is not an address of this machine`, fix: "pass --host with one of this machine's addresses (BATON_HOST), or 0.0.0.0 for all" });
  } else if (error.code === "EACCES") {
    findings.push({ check: name, ok: false, message: `${port} needs privileges this process does not have`, fix: `pass ${flag} above 1023` });
  } else {
    findings.push({ check: name, ok: false, message: `cannot listen on ${port} of ${host}: ${messageOf(error)}`, fix: `check ${flag} and --host` });
  }
}

async function checkDatabase(findings: Finding[], config: Config): Promise<void> {
  const postgres = config.databaseUrl !== undefined;
  let status: Awaited<ReturnType<typeof probes.database>>;
  try {
    status = await within(probes.database(config), DATABASE_TIMEOUT_MS, "the database");
  } catch (error) {
    const mismatch = nativeModuleMismatch((error as { cause?: unknown }).cause ?? error);
    if (mismatch !== undefined) {
      findings.push({ check: "database", ok: false, message: mismatch.problem, fix: mismatch.fix });
      return;
    }
    findings.push({
      check: "database",
      ok: false,
      // The driver's own words (connection refused, authentication failed) are the cause of the retryable error.
      message: `${postgres ? "Postgres" : "SQLite"} does not answer: ${messageOf((error as { cause?: unknown }).cause ?? error)}`,
      fix: postgres ? "check DATABASE_URL (host, port, database, user, password) and that Postgres runs and accepts connections from this host" : "check --data-dir (BATON_DATA_DIR): the folder must be writable and baton.sqlite a Baton database",
    });
    return;
  }
  const { description, version, expected } = status;
  if (version === null) {
    findings.push({ check: "database", ok: true, message: `${description} does not exist yet; it is created at start (schema version ${expected})` });
  } else if (version === expected) {
    findings.push({ check: "database", ok: true, message: `${description} answers; schema version ${version} is current` });
  } else if (version > expected) {
    findings.push({ check: "database", ok: false, message: `${description} is at schema version ${version}, newer than this Baton (${expected})`, fix: "upgrade Baton to the release that migrated this database, or point it at another database" });
  } else if (!postgres || config.migrate) {
    findings.push({ check: "database", ok: true, message: `${description} answers; schema version ${version}, migrations ${version + 1} to ${expected} would be applied at start` });
  } else {
    findings.push({ check: "database", ok: false, message: `${description} is at schema version ${version}, this Baton needs ${expected}, and BATON_MIGRATE is off`, fix: "run 'baton migrate' with the same DATABASE_URL (or set BATON_MIGRATE=true)" });
  }
}

async function checkRedis(findings: Finding[], url: string): Promise<void> {
  try {
    await probes.redis(url);
    findings.push({ check: "redis", ok: true, message: "answers" });
  } catch (error) {
    findings.push({ check: "redis", ok: false, message: messageOf(error).replace(/\. Check REDIS_URL$/, ""), fix: "check REDIS_URL (host, port, password) and that Redis runs and accepts connections from this host" });
  }
}

/** What the project needs: its LangChain packages, each graph, authentication. */
async function checkProject(findings: Finding[], config: Config, loaded: LoadedProject): Promise<void> {
  try {
    probes.packages(loaded);
    findings.push({ check: "packages", ok: true, message: "the project's LangChain packages are supported" });
  } catch (error) {
    findings.push({ check: "packages", ok: false, message: messageOf(error), fix: "install a supported version in the project (docs/configuration.md, \"The project's own LangChain packages\")" });
  }
  for (const { graphId, spec } of loaded.graphs) {
    try {
      await probes.graph(loaded, graphId);
      findings.push({ check: `graph ${graphId}`, ok: true, message: `${spec} loads` });
    } catch (error) {
      findings.push({ check: `graph ${graphId}`, ok: false, message: messageOf(error), fix: `make ${spec} (relative to ${loaded.path}) export the graph, or correct graphs.${graphId} in langgraph.json` });
    }
  }
  try {
    const mode = await probes.access(config, loaded);
    const how = { custom: "langgraph.json auth.path", "api-keys": "BATON_API_KEYS", none: "none (loopback only, or a proxy authenticates)" }[mode as "custom" | "api-keys" | "none"] ?? mode;
    findings.push({ check: "auth", ok: true, message: `authentication: ${how}` });
  } catch (error) {
    findings.push({ check: "auth", ok: false, message: messageOf(error), fix: "see docs/auth.md: correct auth.path or BATON_API_KEYS, or listen on 127.0.0.1" });
  }
  try {
    findings.push({ check: "store", ok: true, message: await probes.store(loaded) });
  } catch (error) {
    findings.push({ check: "store", ok: false, message: messageOf(error), fix: "correct store.index in langgraph.json, or install what it names (docs/store.md)" });
  }
}

/** Runs every check; the config was parsed already (`baton doctor` reports a config that does not parse itself). */
export async function doctor(config: Config): Promise<Finding[]> {
  const findings: Finding[] = [];
  let loaded: LoadedProject | undefined;
  try {
    loaded = loadProject(config.configPath);
    findings.push({ check: "config", ok: true, message: `${loaded.path}: ${loaded.graphs.length} graph(s), role ${config.role}` });
  } catch (error) {
    findings.push({ check: "config", ok: false, message: messageOf(error), fix: "correct langgraph.json (docs/configuration.md, \"langgraph.json\"), or pass --config with its path" });
  }
  if (loaded !== undefined) await checkProject(findings, config, loaded);
  await checkDatabase(findings, config);
  if (config.redisUrl !== undefined) await checkRedis(findings, config.redisUrl);
  await checkPort(findings, "port", "--port (BATON_PORT)", config.host, config.port);
  const { metricsPort } = config;
  if (metricsPort !== undefined && metricsPort !== 0 && metricsPort === config.port) {
    findings.push({ check: "metricsPort", ok: false, message: `${metricsPort} is also the main port`, fix: "set BATON_METRICS_PORT to another port, or unset it to serve /metrics on the main port" });
  } else if (metricsPort !== undefined) {
    await checkPort(findings, "metricsPort", "BATON_METRICS_PORT", config.host, metricsPort);
  }
  return findings;
}

/** One line per finding, then a summary line. */
export function formatFindings(findings: Finding[]): string {
  const lines = findings.map((f) => (f.ok ? `ok: ${f.check}: ${f.message}` : `problem: ${f.check}: ${f.message}. Fix: ${f.fix ?? "see docs/operations.md"}.`));
  const problems = findings.filter((f) => !f.ok).length;
  lines.push(problems === 0 ? "baton doctor: all checks passed." : `baton doctor: ${problems} problem(s).`);
  return `${lines.join("\n")}\n`;
}

/** A config that does not parse, as a doctor line. */
export function configProblem(message: string): string {
  return formatFindings([{ check: "config", ok: false, message: messageOf(message), fix: "correct the option named (docs/configuration.md)" }]);
}
