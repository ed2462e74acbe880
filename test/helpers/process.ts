/** Runs `bin/baton.js` as a real child process, as a user would. */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";

export const ROOT = join(import.meta.dirname, "../..");
const children = new Set<ChildProcess>();

/** SIGKILLs every child still alive (for afterAll). */
export function killAll(): void {
  for (const child of children) child.kill("SIGKILL");
}

export interface Baton {
  child: ChildProcess;
  /** Everything printed so far. */
  output: () => { stdout: string; stderr: string };
  /** The URL from the "listening on" line; rejects if the process exits first. */
  url: Promise<string>;
  /** Exit code (or signal name) once the process has ended. */
  exited: Promise<number | string>;
}

/** The environment of this process without the variables that select scale-out (tests name them when they want them). */
export function embeddedEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  return env;
}

export function runBaton(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Baton {
  const child = spawn(process.execPath, [join(ROOT, "bin/baton.js"), ...args], {
    cwd: options.cwd ?? ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...embeddedEnv(), BATON_LOG_LEVEL: "warn", ...options.env },
  });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => {
      children.delete(child);
      resolve(code ?? signal ?? "unknown");
    }),
  );
  const url = new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(stdout);
      if (match) resolve(match[1]!);
    });
    void exited.then((code) => reject(new Error(`baton exited (${code}) before listening: ${stderr}`)));
  });
  url.catch(() => undefined);
  return { child, url, exited, output: () => ({ stdout, stderr }) };
}
