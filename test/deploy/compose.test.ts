/**
 * deploy/compose.yaml, which no machine here can run (no Docker daemon, no
 * base images): parsed with the YAML library, every Baton service's command
 * checked against `baton --help` and its environment against src/config.ts
 * and docs/configuration.md, the wiring checked (database and Redis hosts,
 * healthcheck ports, the migrate dependency, grace periods, the load
 * balancer's upstream), and then each Baton service started for real with
 * its own command and environment, pointed at this test's Postgres and
 * Redis: the migration migrates, the APIs and workers answer /ok and /ready,
 * and a run goes through an API to a worker and back.
 */
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { healthcheckPort } from "../../deploy/docker/healthcheck.js";
import { loadConfig } from "../../src/config.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { ROOT, killAll, runBaton } from "../helpers/process.ts";
import { REDIS_URL, human } from "../helpers/server.ts";
import { DEPLOY, checkCommand, cliSurface, configEnvNames, documentedEnvNames, flagsToOptions, imageEnv } from "./support.ts";

const FILE = join(DEPLOY, "compose.yaml");
const API_KEY = "c".repeat(32);

/** Compose's interpolation: `${VAR}`, `${VAR:-default}`, `${VAR:?error}` from `vars` (unset and empty alike, as with `:`). */
function interpolate(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)((?:[^{}]|\{[^}]*\})*))?\}/g, (_, name: string, op: string | undefined, arg: string | undefined) => {
    const value = vars[name];
    if (value !== undefined && value !== "") return value;
    if (op === ":-") return arg ?? "";
    if (op === ":?") throw new Error(`compose would stop: ${name}: ${arg}`);
    return "";
  });
}

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string; additional_contexts?: Record<string, string> };
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  deploy?: { replicas?: number };
  stop_grace_period?: string;
  healthcheck?: unknown;
  ports?: string[];
  volumes?: string[];
}

const load = (vars: Record<string, string>) =>
  parse(interpolate(readFileSync(FILE, "utf8"), vars), { merge: true }) as { services: Record<string, Service> };

const VARS = { BATON_API_KEYS: `compose:${API_KEY}` };
const services = () => load(VARS).services;
const batonServices = () => Object.entries(services()).filter(([, s]) => s.build?.dockerfile === "deploy/Dockerfile");
const seconds = (duration: string) => {
  const m = /^(\d+)(s|m)$/.exec(duration);
  if (m === null) throw new Error(`duration ${duration}`);
  return Number(m[1]) * (m[2] === "m" ? 60 : 1);
};

describe("deploy/compose.yaml", () => {
  it("refuses to start without BATON_API_KEYS, as the APIs would, and has no `$` Compose would reject", () => {
    expect(() => load({})).toThrow(/BATON_API_KEYS/);
    // This file writes variables as `${...}` only; any other `$` is a mistake (`$(...)` stops Compose with "invalid interpolation format").
    const outside = readFileSync(FILE, "utf8").replace(/\$\{[^{}]*\}/g, "").replace(/\$\$/g, "");
    expect(outside).not.toContain("$");
  });

  it("builds deploy/Dockerfile from the repository root with a project that exists", () => {
    const baton = batonServices();
    expect(baton.map(([name]) => name).sort()).toEqual(["api", "migrate", "worker"]);
    for (const [name, service] of baton) {
      const context = resolve(DEPLOY, service.build!.context);
      expect(context, name).toBe(ROOT);
      expect(existsSync(join(context, service.build!.dockerfile))).toBe(true);
      const project = resolve(DEPLOY, service.build!.additional_contexts!.project!);
      expect(existsSync(join(project, "langgraph.json")), `${name}: project ${project}`).toBe(true);
    }
    expect(services().api!.deploy?.replicas).toBe(2);
    expect(services().worker!.deploy?.replicas).toBe(2);
  });

  it("runs only commands, flags and environment variables Baton has, wired to the services they name", () => {
    const cli = cliSurface();
    const known = configEnvNames();
    const documented = documentedEnvNames();
    const all = services();
    const postgres = all.postgres!.environment!;
    for (const [name, service] of batonServices()) {
      const flags = checkCommand(service.command!, cli, name);
      const env = service.environment!;
      for (const variable of Object.keys(env)) {
        expect(known, `${name}: ${variable} is not read by src/config.ts`).toContain(variable);
        expect(documented, `${name}: ${variable} is not in docs/configuration.md`).toContain(variable);
      }
      const config = loadConfig(flagsToOptions(flags), { ...imageEnv("/data"), ...env });
      // The database and Redis are the compose services, with the credentials Postgres was given.
      const db = new URL(config.databaseUrl!);
      expect(db.hostname).toBe("postgres");
      expect([decodeURIComponent(db.username), decodeURIComponent(db.password), db.pathname.slice(1)]).toEqual([
        postgres.POSTGRES_USER,
        postgres.POSTGRES_PASSWORD,
        postgres.POSTGRES_DB,
      ]);
      if (service.command![0] === "migrate") {
        expect(service.depends_on?.postgres?.condition).toBe("service_healthy");
        continue;
      }
      expect(new URL(config.redisUrl!).hostname).toBe("redis");
      expect(config.migrate, `${name} must leave migrating to the migrate service`).toBe(false);
      expect(service.depends_on?.migrate?.condition).toBe("service_completed_successfully");
      // The image's healthcheck asks the port this role listens on.
      expect(service.healthcheck).toBeUndefined();
      expect(healthcheckPort({ ...imageEnv("/data"), ...env }), `${name} healthcheck port`).toBe(config.port);
      expect(seconds(service.stop_grace_period!), `${name} stop_grace_period`).toBeGreaterThan(config.shutdownGraceMs / 1000);
    }
    const roles = Object.fromEntries(batonServices().map(([name, s]) => [name, s.environment!.BATON_ROLE]));
    expect(roles).toEqual({ migrate: undefined, api: "api", worker: "worker" });
  });

  it("balances over the API containers' port with SSE-friendly proxy settings", () => {
    const lb = services().lb!;
    const mount = lb.volumes!.find((v) => v.endsWith(":/etc/nginx/nginx.conf:ro"))!;
    const conf = readFileSync(resolve(DEPLOY, mount.split(":")[0]!), "utf8");
    const api = services().api!;
    const apiPort = loadConfig({}, { ...imageEnv("/data"), ...api.environment }).port;
    expect(conf).toMatch(new RegExp(`^\\s*server api:${apiPort} resolve;`, "m"));
    expect(conf).toMatch(/^\s*proxy_pass http:\/\/baton_api;/m);
    expect(conf).toMatch(/^\s*proxy_buffering off;/m);
    expect(conf).toMatch(/^\s*proxy_http_version 1\.1;/m);
    const timeout = Number(/^\s*proxy_read_timeout (\d+)s;/m.exec(conf)?.[1]);
    // At least as long as a run may last, so a /runs/wait is not cut off.
    expect(timeout * 1000).toBeGreaterThanOrEqual(loadConfig({}, {}).runTimeoutMs);
    expect(lb.ports).toEqual(["127.0.0.1:8123:8080"]);
    expect(conf).toMatch(/^\s*listen 8080;/m);
    expect(lb.depends_on?.api?.condition).toBe("service_healthy");
  });
});

describe("the compose services, started with their own commands and environment", () => {
  let db: TestDatabase;
  let dataDir: string;
  const redisPrefix = `baton-test:${randomUUID()}:`;
  beforeAll(async () => {
    db = await freshDatabase("deploy_compose");
    dataDir = mkdtempSync(join(tmpdir(), "baton-compose-"));
  });
  afterAll(async () => {
    killAll();
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A service's container environment on this machine: the image's, the service's, this test's Postgres and Redis. */
  const containerEnv = (service: Service) => ({
    ...imageEnv(dataDir),
    ...service.environment,
    DATABASE_URL: db.url,
    REDIS_URL,
    BATON_REDIS_PREFIX: redisPrefix,
    BATON_SHUTDOWN_GRACE_MS: "0",
  });

  it("migrates, then two APIs and two workers answer /ok and /ready and carry a run", async () => {
    const all = services();
    const migrate = runBaton(all.migrate!.command!, { env: containerEnv(all.migrate!) });
    expect(await migrate.exited, migrate.output().stderr).toBe(0);

    const replicas = ["api", "api", "worker", "worker"].map((name) => runBaton(all[name]!.command!, { env: { ...containerEnv(all[name]!), BATON_PORT: "0" } }));
    const urls = await Promise.all(replicas.map((r) => r.url));
    for (const url of urls) {
      for (const path of ["/ok", "/ready"]) {
        const response = await fetch(new URL(path, url));
        expect(response.status, `${path} on ${url}: ${await response.clone().text()}`).toBe(200);
      }
    }
    // Each API, with the key from BATON_API_KEYS, gets a run executed by a worker.
    for (const url of urls.slice(0, 2)) {
      const client = new Client({ apiUrl: url, apiKey: API_KEY });
      const thread = await client.threads.create();
      const state = (await client.runs.wait(thread.thread_id, "echo", { input: human(url) })) as { messages: { content: string }[] };
      expect(state.messages.at(-1)?.content).toBe(`echo: ${url}`);
    }
    // The workers serve no API.
    expect((await fetch(new URL("/threads", urls[2]), { method: "POST" })).status).toBe(404);
    for (const r of replicas) r.child.kill("SIGTERM");
    expect(await Promise.all(replicas.map((r) => r.exited))).toEqual([0, 0, 0, 0]);
  });
});
