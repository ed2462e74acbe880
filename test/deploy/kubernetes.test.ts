/**
 * The Kubernetes manifests in deploy/kubernetes/: generated from
 * deploy/kubernetes/generate.ts and never edited by hand (regenerated and
 * compared), valid against the Kubernetes and KEDA schemas, consistent with
 * the CLI and the configuration, the KEDA query right against a migrated
 * database, and each container's command and configuration actually
 * serving: the migrate Job migrates, an API and a worker started as the
 * Deployments start them answer their probes and run a graph together.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ScaledObject, TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import { Client } from "@langchain/langgraph-sdk";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { Job } from "kubernetes-models/batch/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Service, ServiceAccount, type IContainer, type IPodTemplateSpec } from "kubernetes-models/v1";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { CONFIG_MAP, IN_FLIGHT_RUNS_QUERY, SECRET, SECRET_KEYS, render } from "../../deploy/kubernetes/generate.ts";
import { loadConfig } from "../../src/config.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { killAll, runBaton } from "../helpers/process.ts";
import { REDIS_URL, human } from "../helpers/server.ts";
import { DEPLOY, checkCommand, cliSurface, configEnvNames, documentedEnvNames, flagsToOptions, imageEnv } from "./support.ts";

const DIR = join(DEPLOY, "kubernetes");

/** The kinds the manifests may use, each with the model that validates it. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  "v1/ServiceAccount": ServiceAccount,
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "batch/v1/Job": Job,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
  "keda.sh/v1alpha1/TriggerAuthentication": TriggerAuthentication,
};

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
}

/** Every object of the committed files, as YAML parsed them. */
function committed(): { file: string; doc: Doc }[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(DIR, file), "utf8")).map((d) => {
        expect(d.errors, file).toEqual([]);
        return { file, doc: d.toJS() as Doc };
      }),
    );
}

const find = (kind: string, name: string) => {
  const found = committed().find(({ doc }) => doc.kind === kind && doc.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name} in deploy/kubernetes`);
  return found.doc;
};
const template = (kind: "Deployment" | "Job", name: string) => find(kind, name).spec.template as IPodTemplateSpec;
const container = (kind: "Deployment" | "Job", name: string) => template(kind, name).spec!.containers[0]!;

describe("deploy/kubernetes", () => {
  it("holds exactly what generate.ts writes (npm run deploy:manifests)", () => {
    const generated = render();
    const files = readdirSync(DIR).filter((f) => f.endsWith(".yaml")).sort();
    expect(files).toEqual(Object.keys(generated).sort());
    for (const [file, text] of Object.entries(generated)) {
      expect(readFileSync(join(DIR, file), "utf8"), `deploy/kubernetes/${file} differs from generate.ts: run npm run deploy:manifests`).toBe(text);
    }
  });

  it("validates every object against the Kubernetes and KEDA OpenAPI schemas", () => {
    const objects = committed();
    expect(objects.length).toBeGreaterThanOrEqual(10);
    for (const { file, doc } of objects) {
      const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
      expect(Model, `${file}: ${doc.apiVersion} ${doc.kind} has no model in this test`).toBeDefined();
      expect(() => new Model!(doc as never).validate(), `${file}: ${doc.kind} ${doc.metadata.name}`).not.toThrow();
    }
    // The validation has teeth: a wrong type and a missing required field are refused.
    const deployment = structuredClone(find("Deployment", "baton-api"));
    deployment.spec.template.spec.containers[0].ports[0].containerPort = "8123";
    expect(() => new Deployment(deployment as never).validate()).toThrow(/containerPort must be integer/);
    const scaled = structuredClone(find("ScaledObject", "baton-worker"));
    delete scaled.spec.scaleTargetRef;
    expect(() => new ScaledObject(scaled as never).validate()).toThrow(/scaleTargetRef/);
  });

  it("wires the objects to each other: selectors, targets, the ConfigMap and the Secret", () => {
    const objects = committed().map(({ doc }) => doc);
    const podLabels = (name: string) => template("Deployment", name).metadata!.labels!;
    const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

    expect(matches(find("Service", "baton").spec.selector, podLabels("baton-api"))).toBe(true);
    expect(find("Service", "baton").spec.ports[0].targetPort).toBe(container("Deployment", "baton-api").ports![0]!.name);
    expect(find("HorizontalPodAutoscaler", "baton-api").spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: "baton-api" });
    expect(find("HorizontalPodAutoscaler", "baton-api").spec.metrics[0].resource.name).toBe("cpu");
    // The HPA computes utilization against the request.
    expect(container("Deployment", "baton-api").resources?.requests?.cpu).toBeDefined();
    expect(matches(find("PodDisruptionBudget", "baton-api").spec.selector.matchLabels, podLabels("baton-api"))).toBe(true);
    expect(matches(find("PodDisruptionBudget", "baton-worker").spec.selector.matchLabels, podLabels("baton-worker"))).toBe(true);
    expect(matches(find("PodDisruptionBudget", "baton-api").spec.selector.matchLabels, podLabels("baton-worker"))).toBe(false);

    const scaled = find("ScaledObject", "baton-worker").spec;
    expect(scaled.scaleTargetRef.name).toBe("baton-worker");
    const trigger = scaled.triggers[0];
    expect(trigger.type).toBe("postgresql");
    expect(Number(trigger.metadata.targetQueryValue)).toBeGreaterThan(0);
    const auth = find("TriggerAuthentication", trigger.authenticationRef.name).spec;
    expect(auth.secretTargetRef).toEqual([{ parameter: "connection", name: SECRET, key: "DATABASE_URL" }]);

    // Every Baton container reads the one ConfigMap (which exists) and the Secret; no Secret is shipped.
    const containers = [container("Deployment", "baton-api"), container("Deployment", "baton-worker"), container("Job", "baton-migrate")];
    for (const c of containers) expect(c.envFrom).toEqual([{ configMapRef: { name: CONFIG_MAP } }, { secretRef: { name: SECRET } }]);
    expect(find("ConfigMap", CONFIG_MAP).data).toBeDefined();
    expect(objects.some((o) => o.kind === "Secret")).toBe(false);
  });

  it("uses only commands, flags and environment variables Baton has, and probes the port each role listens on", () => {
    const cli = cliSurface();
    const known = configEnvNames();
    const documented = documentedEnvNames();
    const data = find("ConfigMap", CONFIG_MAP).data!;
    for (const name of [...Object.keys(data), ...SECRET_KEYS]) {
      expect(known, `${name} is not read by src/config.ts`).toContain(name);
      expect(documented, `${name} is not in docs/configuration.md`).toContain(name);
    }
    const secret = { DATABASE_URL: "postgres://baton@db:5432/baton", REDIS_URL: "redis://redis:6379", BATON_API_KEYS: `k8s:${"k".repeat(32)}` };
    const started = (c: IContainer, where: string) => {
      const flags = checkCommand(c.args!, cli, where);
      return loadConfig(flagsToOptions(flags), { ...data, ...secret });
    };

    const migrate = container("Job", "baton-migrate");
    expect(migrate.args).toEqual(["migrate"]);
    expect(started(migrate, "migrate Job").databaseUrl).toBe(secret.DATABASE_URL);
    expect(template("Job", "baton-migrate").spec!.restartPolicy).toBe("Never");

    for (const [name, role] of [["baton-api", "api"], ["baton-worker", "worker"]] as const) {
      const c = container("Deployment", name);
      const config = started(c, name);
      expect(config.role).toBe(role);
      // The Deployments never migrate: the Job does, once, before them.
      expect(config.migrate).toBe(false);
      expect(config.host).toBe("0.0.0.0");
      const port = c.ports![0]!;
      expect(port.containerPort, `${name} listens on ${config.port}`).toBe(config.port);
      expect(c.livenessProbe?.httpGet).toEqual({ path: "/ok", port: port.name });
      expect(c.startupProbe?.httpGet).toEqual({ path: "/ok", port: port.name });
      expect(c.readinessProbe?.httpGet).toEqual({ path: "/ready", port: port.name });
      // Termination waits for the drain (and the API's preStop pause) with room to hand runs back.
      const preStop = c.lifecycle?.preStop?.exec?.command?.[0] === "sleep" ? Number(c.lifecycle.preStop.exec.command[1]) : 0;
      const grace = template("Deployment", name).spec!.terminationGracePeriodSeconds!;
      expect(grace, `${name} terminationGracePeriodSeconds`).toBeGreaterThan(preStop + config.shutdownGraceMs / 1000);
    }
    expect(container("Deployment", "baton-worker").ports![0]!.containerPort).toBe(8124);
  });
});

describe("the manifests against a real database, Redis and Baton", () => {
  let db: TestDatabase;
  let dataDir: string;
  const redisPrefix = `baton-test:${randomUUID()}:`;
  beforeAll(async () => {
    db = await freshDatabase("deploy_k8s");
    dataDir = mkdtempSync(join(tmpdir(), "baton-k8s-"));
  });
  afterAll(async () => {
    killAll();
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A container's environment: the image's, the ConfigMap, the Secret (pointing at this test's database and Redis). */
  const podEnv = () => ({
    ...imageEnv(dataDir),
    ...find("ConfigMap", CONFIG_MAP).data,
    DATABASE_URL: db.url,
    REDIS_URL,
    BATON_API_KEYS: `k8s:${"k".repeat(32)}`,
    BATON_REDIS_PREFIX: redisPrefix,
    BATON_SHUTDOWN_GRACE_MS: "0",
  });

  it("migrates with the Job's command, then the KEDA query counts running and due pending runs", async () => {
    const migrate = runBaton(container("Job", "baton-migrate").args!, { env: podEnv() });
    expect(await migrate.exited, migrate.output().stderr).toBe(0);

    const query = find("ScaledObject", "baton-worker").spec.triggers[0].metadata.query as string;
    expect(query).toBe(IN_FLIGHT_RUNS_QUERY);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const count = async () => Number((await client.query<{ n: string }>(`SELECT (${query}) AS n`)).rows[0]!.n);
      expect(await count()).toBe(0);
      const now = new Date().toISOString();
      await client.query(
        `INSERT INTO threads (thread_id, created_at, updated_at, metadata, status, interrupts, config) VALUES ('t', $1, $1, '{}', 'busy', '{}', '{}')`,
        [now],
      );
      const insert = (id: string, status: string, availableAt: string) =>
        client.query(
          `INSERT INTO runs (run_id, thread_id, assistant_id, graph_id, status, metadata, multitask_strategy, kwargs, available_at_ms, created_at, updated_at)
           VALUES ($1, 't', 'a', 'g', $2, '{}', 'enqueue', '{}', ${availableAt}, $3, $3)`,
          [id, status, now],
        );
      const nowMs = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";
      await insert("running", "running", nowMs);
      await insert("due-1", "pending", `${nowMs} - 1000`);
      await insert("due-2", "pending", nowMs);
      await insert("delayed", "pending", `${nowMs} + 3600000`);
      await insert("done", "success", nowMs);
      await insert("failed", "error", nowMs);
      await insert("interrupted", "interrupted", nowMs);
      expect(await count()).toBe(3);
      await client.query(`UPDATE runs SET available_at_ms = ${nowMs} - 1 WHERE run_id = 'delayed'`);
      expect(await count()).toBe(4);
      await client.query(`DELETE FROM threads`);
    } finally {
      await client.end();
    }
  });

  it("keeps an API applied before its release's migrate Job unready, naming baton migrate, and never migrates itself", async () => {
    const older = await freshDatabase("deploy_k8s_older");
    try {
      const migrate = runBaton(container("Job", "baton-migrate").args!, { env: { ...podEnv(), DATABASE_URL: older.url } });
      expect(await migrate.exited, migrate.output().stderr).toBe(0);
      // The schema of the previous release: one migration behind.
      const client = new pg.Client({ connectionString: older.url });
      await client.connect();
      const behind = async () => Number((await client.query<{ v: number }>("SELECT max(version) AS v FROM schema_migrations")).rows[0]!.v);
      await client.query("DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)");
      const version = await behind();
      try {
        const api = runBaton(container("Deployment", "baton-api").args!, { env: { ...podEnv(), DATABASE_URL: older.url, BATON_PORT: "0" } });
        const url = await api.url;
        const ok = await fetch(new URL(container("Deployment", "baton-api").livenessProbe!.httpGet!.path!, url));
        expect(ok.status).toBe(200);
        const ready = await fetch(new URL(container("Deployment", "baton-api").readinessProbe!.httpGet!.path!, url));
        expect(ready.status).toBe(503);
        expect(((await ready.json()) as { detail: string }).detail).toMatch(/baton migrate/);
        expect(await behind()).toBe(version);
        api.child.kill("SIGTERM");
        expect(await api.exited).toBe(0);
      } finally {
        await client.end();
      }
    } finally {
      await older.drop();
    }
  });

  it("starts the API and the worker as their Deployments do; their probes answer and a run executes", async () => {
    const api = runBaton(container("Deployment", "baton-api").args!, { env: { ...podEnv(), BATON_PORT: "0" } });
    const worker = runBaton(container("Deployment", "baton-worker").args!, { env: { ...podEnv(), BATON_PORT: "0" } });
    const [apiUrl, workerUrl] = await Promise.all([api.url, worker.url]);
    for (const [url, c] of [[apiUrl, container("Deployment", "baton-api")], [workerUrl, container("Deployment", "baton-worker")]] as const) {
      for (const probe of [c.livenessProbe!, c.readinessProbe!, c.startupProbe!]) {
        const response = await fetch(new URL(probe.httpGet!.path!, url));
        expect(response.status, `${probe.httpGet!.path} on ${url}: ${await response.clone().text()}`).toBe(200);
      }
    }
    // The API refuses a caller without a key from the Secret, and serves one with it.
    expect((await fetch(new URL("/assistants/search", apiUrl), { method: "POST" })).status).toBe(401);
    const client = new Client({ apiUrl, apiKey: "k".repeat(32) });
    const thread = await client.threads.create();
    const state = (await client.runs.wait(thread.thread_id, "echo", { input: human("hello") })) as { messages: { content: string }[] };
    expect(state.messages.at(-1)?.content).toBe("echo: hello");
    api.child.kill("SIGTERM");
    worker.child.kill("SIGTERM");
    expect(await api.exited).toBe(0);
    expect(await worker.exited).toBe(0);
  });
});
