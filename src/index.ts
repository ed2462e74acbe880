/**
 * Baton as a library: start a server from code (tests, a custom entry
 * point) the way `baton serve` does.
 *
 *   const config = loadConfig({ configPath: "./langgraph.json", port: 0 });
 *   const server = await createServer(config, loadProject(config.configPath), createLogger({ level: "info", format: "json" }));
 *
 * The sources are TypeScript: load them through tsx (`node --import tsx`).
 * To have Baton use the project's own copies of the LangChain packages, call
 * `registerProjectResolution(projectDir)` from
 * `baton-agent-server/project-resolution` before importing this module, as
 * bin/baton.js does (docs/configuration.md says why).
 */
export { ConfigError, loadConfig, loadProject, type Config, type LoadedProject } from "./config.ts";
export { createLogger, createServer, migrateDatabase, VERSION, type BatonServer } from "./server.ts";
