/**
 * `baton dev | serve | --help`: parses flags, loads the configuration and
 * langgraph.json, starts the server, and stops it gracefully on SIGINT/SIGTERM.
 */
import { parseArgs } from "node:util";
import { ConfigError, loadConfig, loadProject, type Config } from "../config.ts";
import { createLogger, createServer } from "../server.ts";

const HELP = `Usage: baton <command> [options]

Commands:
  dev     Serve the graphs of langgraph.json with readable logs (development).
  serve   Serve them with JSON logs (production).

Options:
  --config <path>     langgraph.json to serve           (default ./langgraph.json)
  --port <n>          TCP port, 0 picks a free one       (default 8123)
  --host <addr>       Address to listen on               (default 127.0.0.1)
  --data-dir <dir>    Where the SQLite file is kept      (default .baton)
  --workers <n>       Runs executed at once              (default 10)
  --log-level <lvl>   debug | info | warn | error        (default info)
  -h, --help          Show this help.

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
      "log-level": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const command = positionals[0];
  if (values.help || command === undefined || command === "help") {
    process.stdout.write(HELP);
    return command === undefined && !values.help ? 1 : 0;
  }
  if (command !== "dev" && command !== "serve") {
    process.stderr.write(`baton: unknown command '${command}'. Run 'baton --help'.\n`);
    return 2;
  }
  let config: Config;
  try {
    config = loadConfig({
      configPath: values.config,
      port: values.port,
      host: values.host,
      dataDir: values["data-dir"],
      workers: values.workers,
      logLevel: values["log-level"],
      logFormat: command === "dev" ? "pretty" : "json",
      watch: command === "dev",
    });
  } catch (error) {
    process.stderr.write(`baton: ${(error as Error).message}\n`);
    return 2;
  }
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, write: (line) => process.stderr.write(line) });
  try {
    const project = loadProject(config.configPath);
    const server = await createServer(config, project, logger);
    // The first stdout line is the URL, so scripts and tests can read it.
    process.stdout.write(`Baton listening on ${server.url}\n`);
    logger.info("server:started", { url: server.url, graphs: server.graphs, storage: server.storage, workers: config.workers });
    let stopping = false;
    const stop = (signal: string) => {
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
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGTERM", () => stop("SIGTERM"));
    return -1;
  } catch (error) {
    const message = error instanceof ConfigError ? error.message : (error as Error).stack ?? String(error);
    process.stderr.write(`baton: ${message}\n`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exit(code);
