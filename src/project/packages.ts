/**
 * The LangChain packages a project shares with Baton (see resolve-hook.js):
 * which copy the project resolves, its version, and whether Baton supports
 * it. Baton needs LangGraph 1.x (graphs with `getState`, the v1 stream
 * chunks, runtime `context`) and the @langchain/core 1.x message classes; a
 * project on an older major release is refused at start, with the versions,
 * instead of failing every run.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../config.ts";

/** Supported releases of each shared package: `>=min <nextMajor`. */
export const SUPPORTED = {
  "@langchain/core": { min: "1.0.0", nextMajor: 2 },
  "@langchain/langgraph": { min: "1.0.0", nextMajor: 2 },
  "@langchain/langgraph-checkpoint": { min: "1.0.0", nextMajor: 2 },
} as const;
export type SharedPackage = keyof typeof SUPPORTED;

export const rangeText = (name: SharedPackage) => `>=${SUPPORTED[name].min} <${SUPPORTED[name].nextMajor}.0.0`;

export interface ResolvedPackage {
  name: SharedPackage;
  version: string;
  /** The package's folder. */
  dir: string;
  /** Whether it is the project's own copy (else Baton's). */
  fromProject: boolean;
}

/** The folder of `name` as Node finds it from `fromDir`: the nearest node_modules upwards. */
function packageDir(name: string, fromDir: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

const BATON_DIR = dirname(fileURLToPath(new URL("../../package.json", import.meta.url)));

/**
 * The copy of each shared package this process loads for a project: the
 * project's when it has one (the checkpoint library as its langgraph finds
 * it), else Baton's own. Mirrors the hook's rule.
 */
export function resolveSharedPackages(projectDir: string): ResolvedPackage[] {
  const langgraph = packageDir("@langchain/langgraph", projectDir);
  return (Object.keys(SUPPORTED) as SharedPackage[]).map((name) => {
    const from = name === "@langchain/langgraph-checkpoint" && langgraph !== undefined ? langgraph : projectDir;
    const own = packageDir(name, from);
    const dir = own ?? packageDir(name, BATON_DIR)!;
    const version = (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version?: unknown }).version;
    return { name, version: typeof version === "string" ? version : "unknown", dir, fromProject: own !== undefined };
  });
}

/** `1.2.3` or `1.2.3-rc.1` to numbers, the pre-release tag apart; undefined when it is not a version. */
function parseVersion(version: string): { core: [number, number, number]; pre: boolean } | undefined {
  const match = /^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+.*)?$/.exec(version);
  if (match === null) return undefined;
  return { core: [Number(match[1]), Number(match[2]), Number(match[3])], pre: match[4] !== undefined };
}

/** Whether `version` lies in the supported range of `name` (a pre-release of the minimum counts as below it). */
export function isSupported(name: SharedPackage, version: string): boolean {
  const parsed = parseVersion(version);
  if (parsed === undefined) return false;
  const min = parseVersion(SUPPORTED[name].min)!.core;
  const [major] = parsed.core;
  if (major >= SUPPORTED[name].nextMajor) return false;
  for (let i = 0; i < 3; i++) {
    if (parsed.core[i]! !== min[i]!) return parsed.core[i]! > min[i]!;
  }
  return !parsed.pre;
}

/**
 * Whether every shared package `projectDir` resolves is supported: only then
 * may the resolve hook point Baton at the project's copies. Baton's modules
 * do not even link against an older release (LangGraph 0.2 has no `Command`
 * export), so with one they keep Baton's copies, and the start is refused by
 * checkSharedPackages with the versions.
 */
export function sharedPackagesSupported(projectDir: string): boolean {
  return resolveSharedPackages(projectDir).every((p) => isSupported(p.name, p.version));
}

/** The shared packages `projectDir` has copies of (the hook points every importer at them). */
export function projectCopies(projectDir: string): ResolvedPackage[] {
  return resolveSharedPackages(projectDir).filter((p) => p.fromProject);
}

/** What to say when the project's copies fail to load: which copies, the cause, and where to look. */
export function projectCopiesFailed(copies: ResolvedPackage[], error: unknown): string {
  const names = copies.map((p) => `${p.name} ${p.version} at ${p.dir}`).join(", ");
  const cause = error instanceof Error ? error.message : String(error);
  return `the project's LangChain packages did not load (${names}): ${cause}. Check the project's install (npm ls ${copies.map((p) => p.name).join(" ")} in its folder shows what conflicts).`;
}

/** Throws a ConfigError naming every shared package whose resolved version Baton does not support. */
export function checkSharedPackages(packages: ResolvedPackage[]): void {
  const bad = packages.filter((p) => !isSupported(p.name, p.version));
  if (bad.length === 0) return;
  const lines = bad.map((p) => `${p.name} ${p.version} (at ${p.dir}) is not supported: Baton needs ${rangeText(p.name)}`);
  throw new ConfigError(`${lines.join("; ")}. Upgrade the project's LangChain packages (npm install ${bad.map((p) => `${p.name}@^${SUPPORTED[p.name].nextMajor - 1}`).join(" ")}).`);
}
