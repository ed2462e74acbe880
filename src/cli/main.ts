/**
 * `baton dev | serve | migrate | doctor | --help`: parses flags, loads the configuration and
 * langgraph.json, starts the server, and stops it gracefully on SIGINT/SIGTERM.
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ConfigError, loadConfig, loadProject, type Config, type LoadedProject } from "../config.ts";
import { createLogger, createServer, migrateDatabase, type BatonServer } from "../server.ts";
import { nativeModuleMismatch } from "../node-lines.js";
import { reportLoadedFiles, runWithReload } from "./dev-reload.ts";
import { configProblem, doctor, formatFindings } from "./doctor.ts";

const HELP = `Usage: baton <command> [options]

Commands:
  dev      Serve the graphs of langgraph.json with readable logs (development).
  serve    Serve them with JSON logs (production).
  migrate  Bring the Postgres schema of DATABASE_URL up to date, then exit.
  doctor   Check the configuration, graphs, auth, database, Redis and ports;
           one line per problem with its fix; exit 1 if there is any.

Options:
  --config <path>     langgraph.json to serve           (default ./langgraph.json)
  --port <n>          TCP port, 0 picks a free one       (default 8123, worker
                      role 8124; or BATON_PORT, PORT)
  --host <addr>       Address to listen on               (default 127.0.0.1)
  --data-dir <dir>    Where the SQLite file is kept      (default .baton)
  --workers <n>       Runs executed at once              (default 256)
  --execution-threads <n|auto>
                      Embedded: threads that execute graphs (default auto: cores
                      minus one, at most 4; 0 = on the HTTP event loop)
  --role <role>       all | api | worker                 (default all; api and worker
                      need DATABASE_URL and REDIS_URL)
  --log-level <lvl>   debug | info | warn | error        (default info)
  --no-reload         (dev) do not restart when project files change
  -h, --help          Show this help.

Storage: embedded SQLite in --data-dir, unless DATABASE_URL (Postgres) is set;
REDIS_URL adds Redis for events across processes (scale-out).
Every option also reads an environment variable (BATON_PORT, ...): see docs/configuration.md.
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string" },
      port: { type: "string" },
      host: { type: "string" },
      "data-dir": { type: "string" },
      workers: { type: "string" },
      "execution-threads": { type: "string" },
      role: { type: "string" },
      "log-level": { type: "string" },
      "no-reload": { type: "boolean" },
      // Internal: this process is the server of a reloading `baton dev` (see dev-reload.ts).
      "reload-child": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  const command = positionals[0];
  if (values.help || command === undefined || command === "help") {
    process.stdout.write(HELP);
    return command === undefined && !values.help ? 1 : 0;
  }
  if (command !== "dev" && command !== "serve" && command !== "migrate" && command !== "doctor") {
    process.stderr.write(`baton: unknown command '${command}'. Run 'baton --help'.\n`);
    return 2;
  }
  let config: Config;
  try {
    config = loadConfig(
      {
        configPath: values.config,
        port: values.port,
        host: values.host,
        dataDir: values["data-dir"],
        workers: values.workers,
        executionThreads: values["execution-threads"],
        role: values.role,
        logLevel: values["log-level"],
      },
      undefined,
      // What dev prefers, below flags and environment: readable logs, reload on
      // change, and runs handed back at once on a reload (they resume after it).
      command === "dev" ? { logFormat: "pretty", reload: !values["no-reload"] && !values["reload-child"], shutdownGraceMs: 0 } : {},
    );
  } catch (error) {
    if (command === "doctor") {
      process.stdout.write(configProblem((error as Error).message));
      return 1;
    }
    process.stderr.write(`baton: ${(error as Error).message}\n`);
    return 2;
  }
  if (command === "migrate") return migrateCommand(config);
  if (command === "doctor") {
    const findings = await doctor(config);
    process.stdout.write(formatFindings(findings));
    return findings.every((f) => f.ok) ? 0 : 1;
  }
  if (config.reload) {
    let project: LoadedProject;
    try {
      project = loadProject(config.configPath, {});
    } catch (error) {
      process.stderr.write(`baton: ${(error as Error).message}\n`);
      return 1;
    }
    // The child serves; this process only watches. `--reload-child` stops the recursion.
    const passOn = argv.filter((arg, i) => arg !== "--port" && argv[i - 1] !== "--port" && !arg.startsWith("--port="));
    return runWithReload({
      projectDir: project.baseDir,
      projectFiles: () => projectFiles(config.configPath, project),
      childArgs: [...process.execArgv, fileURLToPath(new URL("../../bin/baton.js", import.meta.url)), ...passOn, "--reload-child"],
      port: config.port,
      debounceMs: 150,
      log: (line) => process.stderr.write(line),
    });
  }
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, write: (line) => process.stderr.write(line) });
  let server: BatonServer | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    // Only the reloading parent going away comes this early: nothing to hand back yet.
    if (server === undefined) process.exit(1);
    if (stopping) {
      logger.warn("server:forced-exit", { signal });
      process.exit(1);
    }
    stopping = true;
    logger.info("server:signal", { signal });
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error("server:stop-failed", { error: (error as Error).message });
        process.exit(1);
      },
    );
  };
  try {
    // Registered before the project loads, so that every file it imports is reported.
    const reload = values["reload-child"] ? reportLoadedFiles(() => stop("parent-gone")) : undefined;
    const project = loadProject(config.configPath);
    server = await createServer(config, project, logger);
    // The first stdout line is the URL, so scripts and tests can read it.
    process.stdout.write(`Baton ${server.role === "all" ? "" : `${server.role} `}listening on ${server.url}\n`);
    reload?.up(server.port);
    logger.info("server:started", { url: server.url, role: server.role, graphs: server.graphs, storage: server.storage, workers: config.workers, execution_threads: server.executionThreads });
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGTERM", () => stop("SIGTERM"));
    return -1;
  } catch (error) {
    // A node_modules installed under another Node line fails when SQLite first loads: say what to run.
    const mismatch = nativeModuleMismatch(error);
    const message = error instanceof ConfigError ? error.message : mismatch !== undefined ? `${mismatch.problem}. Fix: ${mismatch.fix}.` : (error as Error).stack ?? String(error);
    process.stderr.write(`baton: ${message}\n`);
    return 1;
  }
}

/**
 * What `baton dev` watches besides the modules the server imports:
 * langgraph.json, the env file it names and its UI components (bundled at
 * start). Read again at each start, since langgraph.json may name others.
 */
function projectFiles(configPath: string, previous: LoadedProject): string[] {
  let loaded = previous;
  try {
    loaded = loadProject(configPath, {});
  } catch {
    // Invalid for now: the server says why; keep watching what it named before.
  }
  const { project, baseDir } = loaded;
  const files = [loaded.path];
  if (typeof project.env === "string") files.push(resolve(baseDir, project.env));
  for (const component of Object.values(project.ui ?? {})) files.push(resolve(baseDir, component));
  return files;
}

async function migrateCommand(config: Config): Promise<number> {
  if (config.databaseUrl === undefined) {
    process.stderr.write("baton migrate: DATABASE_URL is not set. The embedded SQLite database migrates itself at start.\n");
    return 2;
  }
  try {
    process.stdout.write(`${await migrateDatabase(config.databaseUrl)}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`baton migrate: ${(error as Error).message}\n`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exit(code);
