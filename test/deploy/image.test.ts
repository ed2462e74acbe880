/**
 * deploy/Dockerfile, without Docker (no daemon and no base images here): the
 * test reads the Dockerfile and carries out its stages itself in a clean
 * temporary folder, one folder per stage standing for that stage's `/`.
 * COPY copies from the build context (honouring
 * deploy/Dockerfile.dockerignore) or from another stage, WORKDIR and ENV
 * apply, and every RUN runs as written (`npm ci --omit=dev ...` for Baton and
 * for the project), except the system steps listed in SYSTEM_STEPS, which
 * this machine has already done (a new RUN fails the test until it is run or
 * listed). Then the image's ENTRYPOINT and CMD start Baton from the runtime
 * stage's folder, with the runtime stage's environment, as the image's user
 * (uid 1000, when the test runs as root, so nothing in /app is writable to
 * it); /ok answers, the HEALTHCHECK command passes, a run of the default
 * project executes with the project's own LangChain packages, and the
 * process drains and exits 0 on SIGTERM, after which the healthcheck fails.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, posix, relative } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers/process.ts";
import { human } from "../helpers/server.ts";
import { DEPLOY } from "./support.ts";

/** RUN steps this test does not run, and what it does instead: they install system packages this machine has. */
const SYSTEM_STEPS: Record<string, (root: string) => void> = {
  "apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*": () => {
    for (const tool of ["python3", "make", "g++"]) execFileSync("sh", ["-c", `command -v ${tool}`]);
  },
  "mkdir -p /data": (root) => mkdirSync(join(root, "data"), { recursive: true }),
};

const IMAGE_UID = 1000;
const API_KEY = "i".repeat(32);

interface Instruction {
  op: string;
  rest: string;
}
interface Stage {
  name: string;
  from: string;
  steps: Instruction[];
}

/** The Dockerfile's global ARG defaults and stages, continuation lines joined, comments dropped. */
function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const lines = text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op, rest] = /^(\S+)\s+(.*)$/.exec(line)!;
    if (op === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest!)!;
      stages.push({ name: m[2] ?? String(stages.length), from: m[1]!.replace(/\$\{(\w+)\}/g, (_, a: string) => args[a] ?? ""), steps: [] });
    } else if (stages.length === 0) {
      expect(op).toBe("ARG");
      const [name, value] = rest!.split("=");
      args[name!] = value ?? "";
    } else {
      stages.at(-1)!.steps.push({ op: op!, rest: rest! });
    }
  }
  return { args, stages };
}

/** `.dockerignore` patterns as regular expressions on context-relative paths. */
function ignoreRules(text: string): RegExp[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((pattern) => {
      expect(pattern.startsWith("!"), "negated ignore patterns are not interpreted by this test").toBe(false);
      const source = pattern
        .split(/(\*\*\/|\*\*|\*|\?)/)
        .map((part) => ({ "**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]" })[part] ?? part.replace(/[.+^${}()|[\]\\]/g, "\\$&"))
        .join("");
      return new RegExp(`^${source}$`);
    });
}

interface Built {
  root: string;
  env: Record<string, string>;
  user?: string;
  entrypoint?: string[];
  cmd?: string[];
  healthcheck?: string[];
}

/** Carries out the stages a target needs, each in `<work>/stages/<name>`. */
function builder(work: string) {
  const { stages } = parseDockerfile(readFileSync(join(DEPLOY, "Dockerfile"), "utf8"));
  const ignore = ignoreRules(readFileSync(join(DEPLOY, "Dockerfile.dockerignore"), "utf8"));
  const ignored = (rel: string) => rel.split("/").some((_, i, parts) => ignore.some((r) => r.test(parts.slice(0, i + 1).join("/"))));
  const built = new Map<string, Built>();
  const ran: string[] = [];

  const copyTree = (from: string, to: string, fromContext: boolean) => {
    cpSync(from, to, {
      recursive: true,
      filter: (src) => !fromContext || relative(ROOT, src) === "" || !ignored(relative(ROOT, src).split("\\").join("/")),
    });
  };

  function build(name: string): Built {
    const done = built.get(name);
    if (done !== undefined) return done;
    const stage = stages.find((s) => s.name === name);
    if (stage === undefined) throw new Error(`deploy/Dockerfile has no stage ${name}`);
    const root = join(work, "stages", name);
    mkdirSync(root, { recursive: true });
    const state: Built = { root, env: {} };
    if (stages.some((s) => s.name === stage.from)) {
      const parent = build(stage.from);
      cpSync(parent.root, root, { recursive: true });
      state.env = { ...parent.env };
    }
    let cwd = "/";
    const host = (p: string) => join(root, posix.resolve(cwd, p));
    for (const { op, rest } of stage.steps) {
      switch (op) {
        case "WORKDIR":
          cwd = posix.resolve(cwd, rest);
          mkdirSync(host(cwd), { recursive: true });
          break;
        case "ENV":
          for (const m of rest.matchAll(/([A-Za-z_]\w*)=(\S+)/g)) state.env[m[1]!] = m[2]!;
          break;
        case "COPY": {
          const tokens = rest.split(/\s+/);
          const flags = Object.fromEntries(tokens.filter((t) => t.startsWith("--")).map((t) => t.slice(2).split("=") as [string, string]));
          const paths = tokens.filter((t) => !t.startsWith("--"));
          const dest = paths.pop()!;
          const sourceRoot = flags.from === undefined ? ROOT : build(flags.from).root;
          for (const src of paths) {
            const from = join(sourceRoot, src);
            expect(existsSync(from), `COPY ${rest}: ${src} is missing`).toBe(true);
            const to = statSync(from).isDirectory() || !(dest.endsWith("/") || paths.length > 1) ? host(dest) : join(host(dest), posix.basename(src));
            mkdirSync(statSync(from).isDirectory() ? to : dirname(to), { recursive: true });
            copyTree(from, to, flags.from === undefined);
            if (flags.chown !== undefined && process.getuid?.() === 0) {
              const [uid, gid] = flags.chown.split(":").map(Number);
              const chownTree = (p: string) => {
                chownSync(p, uid!, gid ?? uid!);
                if (statSync(p).isDirectory()) for (const entry of readdirSync(p)) chownTree(join(p, entry));
              };
              chownTree(to);
            }
          }
          break;
        }
        case "RUN": {
          const command = rest.replace(/^(--\S+\s+)+/, "");
          const instead = SYSTEM_STEPS[command];
          if (instead !== undefined) {
            instead(root);
            break;
          }
          expect(command.startsWith("/") || /\s\/(?!dev\/null)/.test(command), `RUN ${command}: absolute paths cannot run here; list it in SYSTEM_STEPS`).toBe(false);
          execFileSync("sh", ["-c", command], { cwd: host(cwd), env: { ...process.env, ...state.env }, stdio: ["ignore", "ignore", "pipe"] });
          ran.push(command);
          break;
        }
        case "USER":
          state.user = rest;
          break;
        case "ENTRYPOINT":
          state.entrypoint = JSON.parse(rest) as string[];
          break;
        case "CMD":
          state.cmd = JSON.parse(rest) as string[];
          break;
        case "HEALTHCHECK": {
          const m = /\bCMD\s+(\[.*\])$/.exec(rest);
          expect(m, "HEALTHCHECK in exec form").not.toBeNull();
          state.healthcheck = JSON.parse(m![1]!) as string[];
          break;
        }
        case "EXPOSE":
        case "VOLUME":
        case "LABEL":
          break;
        default:
          throw new Error(`deploy/Dockerfile: this test does not interpret ${op}`);
      }
    }
    built.set(name, state);
    return state;
  }
  return { build, ran, stages };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("deploy/Dockerfile, carried out in a clean folder", () => {
  let work: string;
  let runtime: Built;
  let ran: string[];
  let baton: ChildProcess | undefined;
  const asImageUser = process.getuid?.() === 0;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "baton-image-"));
    // The image's user must reach the stage folders, as it reaches / in the image.
    chmodSync(work, 0o755);
    const b = builder(work);
    runtime = b.build(b.stages.at(-1)!.name);
    ran = b.ran;
  }, 600_000);
  // Two copies of Baton's node_modules and the project's: removing them takes a while on a busy machine.
  afterAll(() => {
    baton?.kill("SIGKILL");
    rmSync(work, { recursive: true, force: true });
  }, 180_000);

  /** A path in the image, on this machine. */
  const inImage = (p: string) => (p.startsWith("/") ? join(runtime.root, p) : p);
  /** The image's environment on this machine: its ENV with paths moved, and what the platform gives every container. */
  const containerEnv = (extra: Record<string, string>) => ({
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: inImage("/data"),
    ...Object.fromEntries(Object.entries(runtime.env).map(([k, v]) => [k, inImage(v)])),
    ...extra,
  });
  /** Runs an exec-form command of the image (node resolved to this node), as the image's user. */
  const execArgs = (command: string[]) => {
    const [program, ...args] = command;
    const argv = [program === "node" ? process.execPath : inImage(program!), ...args.map((a) => (a.startsWith("/") ? inImage(a) : a))];
    return asImageUser ? ["setpriv", [`--reuid=${IMAGE_UID}`, `--regid=${IMAGE_UID}`, "--clear-groups", ...argv]] as const : [argv[0]!, argv.slice(1)] as const;
  };
  const healthcheck = (env: Record<string, string>) => {
    const [program, args] = execArgs(runtime.healthcheck!);
    try {
      execFileSync(program, args, { env: containerEnv(env), stdio: "ignore", timeout: 10_000 });
      return 0;
    } catch (error) {
      return (error as { status?: number }).status ?? -1;
    }
  };

  it("installs Baton's and the project's production dependencies only, and runs as a non-root user", () => {
    expect(ran.filter((c) => c.includes("npm ci --omit=dev")).length).toBe(2);
    const app = inImage("/app");
    expect(existsSync(join(app, "node_modules/better-sqlite3"))).toBe(true);
    const devOnly = ["vitest", "eslint", "playwright-core", "@langchain/langgraph-cli", "kubernetes-models"];
    for (const name of devOnly) expect(existsSync(join(app, "node_modules", name)), `${name} is a devDependency`).toBe(false);
    // The project's own LangChain copies, installed from its lockfile.
    expect(existsSync(join(app, "project/node_modules/@langchain/langgraph/package.json"))).toBe(true);
    expect(readdirSync(join(app, "src"), { recursive: true }).some((f) => String(f).endsWith(".test.ts"))).toBe(false);
    expect(runtime.user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    expect(runtime.entrypoint).toEqual(["node", "/app/bin/baton.js"]);
    expect(runtime.cmd).toEqual(["serve"]);
  });

  it("starts with its ENTRYPOINT and CMD, answers /ok and its HEALTHCHECK, runs the project's graph, and drains on SIGTERM", async () => {
    const port = await freePort();
    const env = { BATON_PORT: String(port), BATON_API_KEYS: `image:${API_KEY}`, BATON_LOG_LEVEL: "debug" };
    const [program, args] = execArgs([...runtime.entrypoint!, ...runtime.cmd!]);
    const child = spawn(program, args, { cwd: inImage("/app"), env: containerEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    baton = child;
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.includes("listening on")) resolve();
      });
      void exited.then((code) => reject(new Error(`baton exited (${code}): ${stderr}`)));
    });
    const url = `http://127.0.0.1:${port}`;
    expect((await fetch(`${url}/ok`)).status).toBe(200);
    expect(healthcheck(env)).toBe(0);

    const client = new Client({ apiUrl: url, apiKey: API_KEY });
    const thread = await client.threads.create();
    const state = (await client.runs.wait(thread.thread_id, "echo", { input: human("from the image") })) as { messages: { content: string }[] };
    expect(state.messages.at(-1)?.content).toBe("echo: from the image");
    // The graphs ran with the project's @langchain/langgraph, not Baton's.
    const packages = stderr.split("\n").find((l) => l.includes('"project:packages"'));
    expect(JSON.parse(packages!)["@langchain/langgraph"]).toMatchObject({ from: "project", dir: expect.stringContaining(join("app", "project", "node_modules")) });
    // SQLite data went to the image's /data volume.
    expect(existsSync(inImage("/data/baton.sqlite"))).toBe(true);

    child.kill("SIGTERM");
    expect(await exited, stderr).toBe(0);
    baton = undefined;
    expect(healthcheck(env)).toBe(1);
  }, 60_000);
});
