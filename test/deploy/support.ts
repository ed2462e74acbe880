/**
 * What the deployment tests (test/deploy/*.test.ts) compare the artefacts of
 * deploy/ with: the CLI as it answers `--help`, the environment variables
 * src/config.ts reads, the image's own environment from deploy/Dockerfile,
 * and a way to start Baton with a container's command and environment.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { ROOT } from "../helpers/process.ts";

export const DEPLOY = join(ROOT, "deploy");

/** The environment variable names src/config.ts maps to options (its `ENV` table), parsed from the source. */
export function configEnvNames(): Set<string> {
  const source = readFileSync(join(ROOT, "src/config.ts"), "utf8");
  const table = /const ENV[^=]*=\s*\{([\s\S]*?)\n\};/.exec(source);
  if (table === null) throw new Error("src/config.ts has no `const ENV = { ... };` table any more: update test/deploy/support.ts");
  const names = new Set([...table[1]!.matchAll(/^\s+([A-Z][A-Z0-9_]*):\s*"\w+",?\s*(?:\/\/.*)?$/gm)].map((m) => m[1]!));
  expect(names.size).toBeGreaterThan(20);
  return names;
}

/** Names docs/configuration.md documents (in backquotes). */
export function documentedEnvNames(): Set<string> {
  const doc = readFileSync(join(ROOT, "docs/configuration.md"), "utf8");
  return new Set([...doc.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!));
}

export interface CliSurface {
  commands: Set<string>;
  options: Set<string>;
}

/** The commands and `--options` that `baton --help` lists. */
export function cliSurface(): CliSurface {
  const help = execFileSync(process.execPath, [join(ROOT, "bin/baton.js"), "--help"], { encoding: "utf8" });
  const commandsBlock = /Commands:\n([\s\S]*?)\n\n/.exec(help)?.[1] ?? "";
  const commands = new Set([...commandsBlock.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]!));
  const options = new Set([...help.matchAll(/^\s+(?:-\w, )?(--[a-z-]+)/gm)].map((m) => m[1]!));
  expect(commands.has("serve")).toBe(true);
  expect(options.has("--role")).toBe(true);
  return { commands, options };
}

/** Checks a container command (the arguments after the image's `baton` entrypoint) against the CLI; answers the flags it sets. */
export function checkCommand(args: string[], cli: CliSurface, where: string): Record<string, string> {
  const [command, ...rest] = args;
  expect(cli.commands, `${where}: command '${command}'`).toContain(command);
  const flags: Record<string, string> = {};
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    expect(arg.startsWith("--"), `${where}: argument '${arg}' is not a flag`).toBe(true);
    expect(cli.options, `${where}: flag '${arg}'`).toContain(arg);
    flags[arg.slice(2)] = rest[++i] ?? "";
  }
  return flags;
}

/** Config options from CLI flags, as src/cli/main.ts maps them (only the flags the artefacts use). */
export function flagsToOptions(flags: Record<string, string>): Record<string, string> {
  const map: Record<string, string> = { role: "role", port: "port", host: "host", config: "configPath", workers: "workers", "log-level": "logLevel" };
  const options: Record<string, string> = {};
  for (const [flag, value] of Object.entries(flags)) {
    const key = map[flag];
    if (key === undefined) throw new Error(`test/deploy/support.ts does not map --${flag}; add it`);
    options[key] = value;
  }
  return options;
}

/**
 * The runtime stage's ENV of deploy/Dockerfile, with the image's paths moved
 * to this machine: /app/project is the project the image serves by default
 * (deploy/example), /data a folder of the caller's.
 */
export function imageEnv(dataDir: string): Record<string, string> {
  const dockerfile = readFileSync(join(DEPLOY, "Dockerfile"), "utf8").replace(/\\\n/g, " ");
  const runtime = dockerfile.slice(dockerfile.lastIndexOf("\nFROM "));
  const env: Record<string, string> = {};
  for (const line of runtime.split("\n").filter((l) => l.startsWith("ENV "))) {
    for (const m of line.slice(4).matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)) env[m[1]!] = m[2]!;
  }
  expect(env.BATON_CONFIG).toBe("/app/project/langgraph.json");
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => [k, v.replace(/^\/app\/project/, join(DEPLOY, "example")).replace(/^\/data$/, dataDir)]),
  );
}
