/**
 * `baton dev` reloading: this process runs the server in a child process and
 * restarts it when a file the server loaded changes.
 *
 * What is watched, as the dev server decides it (`tsx watch` restarts on a
 * change to any module the server process imported outside `node_modules`,
 * and its CLI also watches langgraph.json and the env file it names): the
 * modules the child reports while it loads (see `reportLoadedFiles`),
 * langgraph.json, its env file and its UI components. A file no module
 * imports (package.json, a lock file, a client script run against the
 * server, logs, the data directory) never restarts it.
 *
 * States: STARTING (a child launched, waiting for it to say it is up),
 * SERVING, RESTARTING (SIGTERM sent to the child, which hands its runs back
 * to the queue; the next one starts once it has exited, on the same port),
 * STOPPED (the child ended by itself, or a restart failed: the error is shown
 * and the next change starts one), STOPPING (SIGINT/SIGTERM: stop the child,
 * then exit). There is at most one child at a time: a change while one is
 * starting marks a restart as due once it is up. A child that fails on the
 * very first start ends this process with its exit code, so a broken project
 * fails fast.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { watch, type FSWatcher } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { MessageChannel } from "node:worker_threads";
import { addResolveHook } from "../node-lines.js";
import * as hook from "./dev-reload-hook.js";

export interface ReloadOptions {
  /** The folder of langgraph.json. */
  projectDir: string;
  /** Files the server reads besides modules (langgraph.json, its env file, UI components); asked again at each start. */
  projectFiles: () => string[];
  /** Arguments for the child: `[bin, "dev", ...flags]` without `--port`. */
  childArgs: string[];
  /** Port asked for; after the first start the child's actual port is kept. */
  port: number;
  /** Quiet period after a change before restarting (editors write a file in several steps). */
  debounceMs: number;
  log: (line: string) => void;
}

/** A message from the child: files it has loaded, and once, after them, the port it serves on. */
interface ChildMessage {
  loaded: string[];
  port?: number;
}

/** Baton's own folder: its sources are not the project's (unless the project lives inside it, as the examples do). */
const BATON_DIR = resolve(import.meta.dirname, "../..");

/** Whether a change to `file` (a module the server loaded) should restart it: not a dependency, not Baton itself. */
function watchable(file: string, projectDir: string): boolean {
  if (file.split(sep).includes("node_modules")) return false;
  const inProject = !relative(projectDir, file).startsWith("..");
  return inProject || relative(BATON_DIR, file).startsWith("..");
}

/** Runs until SIGINT/SIGTERM; resolves with the exit code once no child is left. */
export function runWithReload(options: ReloadOptions): Promise<number> {
  let port = options.port;
  let state: "starting" | "serving" | "restarting" | "stopped" | "stopping" = "starting";
  let child: ChildProcess | undefined;
  /** No child has served yet: a failure now ends `baton dev`. */
  let firstStart = true;
  /** A file changed after the current child read it: restart once it is up. */
  let pending = false;
  let timer: NodeJS.Timeout | undefined;
  /** Watched files, and one watcher per folder holding them (a folder watch survives editors that save by renaming). */
  const files = new Set<string>();
  const folders = new Map<string, FSWatcher>();

  return new Promise<number>((resolveExit) => {
    const finish = (code: number) => {
      clearTimeout(timer);
      for (const watcher of folders.values()) watcher.close();
      resolveExit(code);
    };

    const watchFile = (file: string) => {
      files.add(file);
      const folder = dirname(file);
      if (folders.has(folder) || state === "stopping") return;
      let watcher: FSWatcher;
      try {
        watcher = watch(folder, (_event, name) => {
          const changed = name === null ? undefined : join(folder, name.toString());
          if (changed !== undefined && files.has(changed)) onChange(changed);
        });
      } catch {
        return; // the folder does not exist (an env file not written yet): nothing to watch
      }
      // A folder removed while watched: forget it, a later start watches it again.
      watcher.on("error", () => {
        watcher.close();
        folders.delete(folder);
      });
      folders.set(folder, watcher);
    };

    const launch = () => {
      state = "starting";
      pending = false;
      for (const file of options.projectFiles()) watchFile(file);
      // Its own process group: a Ctrl-C in the terminal reaches only this
      // process, which stops the child once (a second signal would force it).
      // Not on Windows, where a detached child gets a console of its own.
      const current = spawn(process.execPath, [...options.childArgs, "--port", String(port)], {
        stdio: ["ignore", "pipe", "inherit", "ipc"],
        detached: process.platform !== "win32",
      });
      child = current;
      // Its "listening" line is held until it says it is up: whoever reads
      // the URL can count on every file it loaded being watched already.
      let held: string | undefined = "";
      const release = () => {
        if (held) process.stdout.write(held);
        held = undefined;
      };
      current.stdout!.on("data", (chunk: Buffer) => {
        if (held === undefined) process.stdout.write(chunk);
        else held += chunk.toString();
      });
      current.on("message", (message: ChildMessage) => {
        for (const file of message.loaded) if (watchable(file, options.projectDir)) watchFile(file);
        if (message.port === undefined || state !== "starting") return;
        release();
        up(current, message.port);
      });
      current.once("exit", (code, signal) => {
        release();
        child = undefined;
        const was = state;
        if (was === "stopping") return finish(0);
        if (was === "restarting") return launch();
        state = "stopped";
        if (was === "starting" && firstStart) return finish(code ?? 1);
        if (was === "starting") {
          options.log(`baton dev: the server did not start; fix the error above, the next change restarts it.\n`);
          if (pending) launch();
          return;
        }
        options.log(`baton dev: the server stopped (${signal ?? `exit ${code ?? "?"}`}); waiting for a change to restart it.\n`);
      });
    };

    const up = (current: ChildProcess, actualPort: number) => {
      port = actualPort;
      state = "serving";
      const first = firstStart;
      firstStart = false;
      if (pending) {
        options.log("baton dev: a change came while the server started; reloading\n");
        restart();
      } else if (!first) {
        // The line a watcher of the log (or a test) waits for: this child is the one serving.
        options.log(`baton dev: reloaded (server pid ${current.pid})\n`);
      }
    };

    const restart = () => {
      state = "restarting";
      child!.kill("SIGTERM");
    };

    const onChange = (file: string) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        const name = relative(options.projectDir, file);
        switch (state) {
          case "serving":
            options.log(`baton dev: ${name} changed, reloading\n`);
            return restart();
          case "starting":
            options.log(`baton dev: ${name} changed while the server starts; reloading once it is up\n`);
            pending = true;
            return;
          case "restarting":
            // The next child has not started yet: it reads the file as it is now.
            options.log(`baton dev: ${name} changed, reloading\n`);
            return;
          case "stopped":
            options.log(`baton dev: ${name} changed, starting the server\n`);
            return launch();
          case "stopping":
            return;
        }
      }, options.debounceMs);
    };

    const stop = () => {
      if (state === "stopping") {
        // A second signal: do not wait for a graceful stop.
        child?.kill("SIGKILL");
        return;
      }
      const was = state;
      state = "stopping";
      clearTimeout(timer);
      if (child === undefined) finish(0);
      // A restarting child already has its SIGTERM: a second one would cut its hand-back short.
      else if (was !== "restarting") child.kill("SIGTERM");
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    launch();
  });
}

/**
 * In the child: tell the parent every file this process loads, as the dev
 * server's `tsx watch` learns its dependencies. ES modules are reported by a
 * resolve hook as they load; CommonJS ones (a project without
 * `"type": "module"`) from the require cache once the server is up. Also:
 * the child stops when the parent goes away (the IPC channel closes), so a
 * parent killed with SIGKILL leaves no server behind.
 */
export function reportLoadedFiles(onParentGone: () => void): { up: (port: number) => void } {
  const send = (message: ChildMessage) => {
    if (process.connected) process.send!(message);
  };
  const { port1, port2 } = new MessageChannel();
  addResolveHook(hook, new URL("./dev-reload-hook.js", import.meta.url), { port: port2 }, [port2]);
  port1.on("message", (url: string) => send({ loaded: [fileURLToPath(url)] }));
  port1.unref();
  process.once("disconnect", onParentGone);
  return { up: (port) => send({ loaded: Object.keys(createRequire(import.meta.url).cache), port }) };
}
