/**
 * `baton dev` reloading: this process watches the project's folder and runs
 * the server in a child process, restarted on every change.
 *
 * States: STARTING (child launched, waiting for its "listening" line),
 * SERVING, RESTARTING (a change arrived: SIGTERM the child, which hands its
 * runs back to the queue, then start a new one on the same port), BROKEN (a
 * restart failed, say a graph no longer loads: the error is shown and the
 * next change tries again). A child that fails on the very first start ends
 * this process with its exit code, so a broken project fails fast.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { watch, type FSWatcher } from "node:fs";
import { relative } from "node:path";

export interface ReloadOptions {
  /** Folder to watch (the folder of langgraph.json). */
  projectDir: string;
  /** Folders under it whose changes are ignored (the data directory). */
  ignore: string[];
  /** Arguments for the child: `[bin, "dev", ...flags]` without `--port`. */
  childArgs: string[];
  /** Port asked for; after the first start the child's actual port is kept. */
  port: number;
  /** Quiet period after a change before restarting. */
  debounceMs: number;
  log: (line: string) => void;
}

const LISTENING = /listening on https?:\/\/\S+:(\d+)/;
const IGNORED = /(^|\/)(node_modules|\.git|\.baton)(\/|$)/;
/** What counts as a change: code, JSON and dotenv files, not logs or data. */
const WATCHED = /\.(?:[cm]?[jt]sx?|json)$|(^|\/)\.env[^/]*$/;

/** Runs until SIGINT/SIGTERM; resolves with the exit code. */
export function runWithReload(options: ReloadOptions): Promise<number> {
  let port = options.port;
  let child: ChildProcess | undefined;
  let started = false;
  let stopping = false;
  /** The child this process asked to stop for a reload. */
  let replacing: ChildProcess | undefined;
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;

  return new Promise<number>((resolveExit) => {
    const finish = (code: number) => {
      watcher?.close();
      clearTimeout(timer);
      resolveExit(code);
    };

    const launch = () => {
      const current = spawn(process.execPath, [...options.childArgs, "--port", String(port)], { stdio: ["ignore", "pipe", "inherit"] });
      child = current;
      let buffered = "";
      current.stdout.on("data", (chunk: Buffer) => {
        const text = chunk.toString();
        process.stdout.write(text);
        if (started) return;
        buffered += text;
        const match = LISTENING.exec(buffered);
        if (match !== null) {
          started = true;
          port = Number(match[1]);
        }
      });
      current.once("exit", (code, signal) => {
        if (child === current) child = undefined;
        if (stopping) return finish(0);
        if (!started) return finish(code ?? 1);
        if (current !== replacing && signal === null) options.log(`baton dev: the server stopped (exit ${code ?? "?"}); waiting for a change to restart it.\n`);
      });
    };

    const restart = (file: string) => {
      options.log(`baton dev: ${file} changed, reloading\n`);
      const previous = child;
      if (previous === undefined) return launch();
      replacing = previous;
      previous.once("exit", () => {
        if (!stopping) launch();
      });
      previous.kill("SIGTERM");
    };

    watcher = watch(options.projectDir, { recursive: true }, (_event, name) => {
      if (name === null || !started) return;
      const file = name.toString();
      if (!WATCHED.test(file) || IGNORED.test(file) || options.ignore.some((dir) => !relative(dir, `${options.projectDir}/${file}`).startsWith(".."))) return;
      clearTimeout(timer);
      timer = setTimeout(() => restart(file), options.debounceMs);
    });

    const stop = () => {
      stopping = true;
      if (child === undefined) finish(0);
      else child.kill("SIGTERM");
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    launch();
  });
}
