/**
 * Starts the published dev server (`langgraphjs dev` of
 * `@langchain/langgraph-cli`) on a free port as a child process, for tests
 * that compare Baton with it call by call.
 */
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { ROOT, embeddedEnv } from "./process.ts";

export interface DevServer {
  url: string;
  client: Client;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * The dev server keeps its state in `.langgraph_api/` beside `configPath`
 * (reloaded at start, written at exit): it is removed before the start, so
 * a previous run's threads cannot leak in, and after the stop. The project
 * folder should list `.langgraph_api` in a `.gitignore`, or the CLI appends
 * it to one.
 */
export async function startDevServer(configPath: string, timeoutMs = 60_000): Promise<DevServer> {
  const state = join(dirname(configPath), ".langgraph_api");
  rmSync(state, { recursive: true, force: true });
  const port = await freePort();
  const cli = join(ROOT, "node_modules/@langchain/langgraph-cli/dist/cli/cli.mjs");
  const args = [cli, "dev", "--port", String(port), "--host", "127.0.0.1", "--config", configPath, "--no-browser", "--no-reload", "--n-jobs-per-worker", "4"];
  // Its own process group, so the CLI and the server it spawns stop together.
  const child = spawn(process.execPath, args, {
    cwd: dirname(configPath),
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...embeddedEnv(), BROWSER: "none", LANGSMITH_TRACING: "false", LANGCHAIN_TRACING_V2: "false" },
  });
  let output = "";
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8_000));
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
      await exited;
    }
    rmSync(state, { recursive: true, force: true });
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      await close();
      throw new Error(`langgraphjs dev exited with ${child.exitCode}: ${output}`);
    }
    const up = await fetch(`${url}/ok`).then(
      (response) => response.ok,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) {
      await close();
      throw new Error(`langgraphjs dev did not answer /ok within ${timeoutMs} ms: ${output}`);
    }
    // Polling another process's port: nothing in this process to await.
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, client: new Client({ apiUrl: url, defaultHeaders: {} }), close };
}
