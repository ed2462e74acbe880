/**
 * Liveness (`/ok`) and readiness (`/ready`) on an API and on a worker
 * process: what readiness checks (database, schema version, Redis), that it
 * fails first when the process is told to stop and the listener keeps
 * answering while runs drain, that neither is behind authentication or the
 * Host check, and a worker's default port (8124, beside an API's 8123).
 */
import { randomUUID } from "node:crypto";
import { request } from "node:http";
import { createServer as createNetServer } from "node:net";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_PORT, loadConfig, WORKER_PORT } from "../../src/config.ts";
import { killAll, runBaton } from "../helpers/process.ts";
import { DATABASE_URL, freshDatabase } from "../helpers/postgres.ts";
import { FIXTURES, REDIS_URL, SCALE_OUT, human, startGatedRun, startServer, type TestServer } from "../helpers/server.ts";

afterAll(() => killAll());

/** The "embedded" vitest project (neither scale-out nor embedded-inline): where process-level tests run once. */
const EMBEDDED_PROJECT = !SCALE_OUT && process.env.BATON_TEST_THREADS === undefined;

async function get(url: string, path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}${path}`, { headers });
  return { status: response.status, body: (await response.json()) as { ok?: boolean; detail?: string; checks?: Record<string, string>; role?: string } };
}

/** A GET with a Host header fetch would not send as given. */
function getWithHost(url: string, path: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on("error", reject);
    req.end();
  });
}

/** The Postgres URL of a test server's database (its storage description names host and database, not the user). */
function databaseUrlOf(server: TestServer): string {
  const url = new URL(DATABASE_URL);
  url.pathname = server.server.storage.slice(server.server.storage.lastIndexOf("/"));
  return url.toString();
}

/** Deletes the newest applied migration's row, as a database one migration behind this Baton would be. */
async function rewindSchema(server: TestServer): Promise<void> {
  const sql = "DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)";
  if (SCALE_OUT) {
    const client = new pg.Client({ connectionString: databaseUrlOf(server) });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  } else {
    const db = new Database(join(server.dataDir, "baton.sqlite"));
    try {
      db.prepare(sql).run();
    } finally {
      db.close();
    }
  }
}

describe("readiness on an API process", () => {
  it("answers 200 with the checks it made; /ok answers too", async () => {
    const t = await startServer();
    try {
      expect(await get(t.url, "/ok")).toEqual({ status: 200, body: { ok: true } });
      const ready = await get(t.url, "/ready");
      expect(ready.status).toBe(200);
      expect(ready.body).toEqual({ ok: true, checks: SCALE_OUT ? { database: "ok", redis: "ok" } : { database: "ok" } });
    } finally {
      await t.close();
    }
  });

  it("answers 503 naming the schema version when the database is behind this Baton", async () => {
    const t = await startServer();
    try {
      await rewindSchema(t);
      const ready = await get(t.url, "/ready");
      expect(ready.status).toBe(503);
      expect(ready.body.ok).toBe(false);
      expect(ready.body.detail).toMatch(/^the schema is at version \d+, this Baton needs \d+: run 'baton migrate'$/);
      expect(ready.body.checks?.database).toBe(ready.body.detail);
      // Liveness is not readiness: the process still serves.
      expect((await get(t.url, "/ok")).status).toBe(200);
    } finally {
      await t.close();
    }
  });

  it.runIf(SCALE_OUT)("answers 503 naming the database while Postgres refuses connections, and 200 once it is back", async () => {
    const t = await startServer();
    const name = new URL(databaseUrlOf(t)).pathname.slice(1);
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [name]);
      const ready = await get(t.url, "/ready");
      expect(ready.status).toBe(503);
      // What the driver said goes to the log, not to whoever can reach the probe.
      expect(ready.body.detail).toBe("the database does not answer (the process's log says why: ready:database-failed)");
      expect(ready.body.checks).toEqual({ database: ready.body.detail, redis: "ok" });
      expect((await get(t.url, "/ok")).status).toBe(200);
      await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      expect(await get(t.url, "/ready")).toEqual({ status: 200, body: { ok: true, checks: { database: "ok", redis: "ok" } } });
    } finally {
      await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      await admin.end();
      await t.close();
    }
  });

  it("is not behind authentication and answers any Host", async () => {
    const t = await startServer({ apiKeys: "probe:0123456789abcdef0123456789" });
    try {
      expect((await get(t.url, "/ready")).status).toBe(200);
      expect((await get(t.url, "/ok")).status).toBe(200);
      // The API itself is.
      expect((await fetch(`${t.url}/assistants/search`, { method: "POST", body: "{}", headers: { "content-type": "application/json" } })).status).toBe(401);
      // Bound to loopback, Baton refuses other host names (DNS rebinding), but not for probes.
      expect(await getWithHost(t.url, "/info", "evil.example")).toBe(403);
      expect(await getWithHost(t.url, "/ready", "evil.example")).toBe(200);
      expect(await getWithHost(t.url, "/ok", "evil.example")).toBe(200);
    } finally {
      await t.close();
    }
  });

  it("fails first when told to stop, keeps answering while the run drains, then the run finishes", async () => {
    const t = await startServer();
    const { thread, run, gate } = await startGatedRun(t.client);
    const closing = t.server.close(60_000);
    try {
      const ready = await get(t.url, "/ready");
      expect(ready.status).toBe(503);
      expect(ready.body.detail).toMatch(/^draining: /);
      expect(ready.body.checks).toEqual({ draining: ready.body.detail });
      expect((await get(t.url, "/ok")).status).toBe(200);
      // The draining process still answers the API: the run is still running.
      expect((await t.client.runs.get(thread.thread_id, run.run_id)).status).toBe("running");
    } finally {
      gate.open();
      await closing;
      await t.close();
    }
  });
});

describe.runIf(SCALE_OUT)("readiness on a worker process", () => {
  it("answers /ok and /ready (database, Redis), 404 for the API, and drains the same way", async () => {
    // One database and one Redis prefix for both processes (each test server would otherwise get its own).
    const database = await freshDatabase("health-worker");
    const shared = { databaseUrl: database.url, redisPrefix: `baton-test:${randomUUID()}:` };
    const apiAgain = await startServer({ role: "api", ...shared });
    const worker = await startServer({ role: "worker", ...shared });
    try {
      expect(await get(worker.url, "/ok")).toEqual({ status: 200, body: { ok: true, role: "worker" } });
      expect(await get(worker.url, "/ready")).toEqual({ status: 200, body: { ok: true, checks: { database: "ok", redis: "ok" } } });
      expect((await fetch(`${worker.url}/threads`, { method: "POST", body: "{}" })).status).toBe(404);

      const { thread, run, gate } = await startGatedRun(apiAgain.client);
      const closing = worker.server.close(60_000);
      try {
        const ready = await get(worker.url, "/ready");
        expect(ready.status).toBe(503);
        expect(ready.body.detail).toMatch(/^draining: /);
        expect((await get(worker.url, "/ok")).status).toBe(200);
        // The API process is not draining.
        expect((await get(apiAgain.url, "/ready")).status).toBe(200);
      } finally {
        gate.open();
        await closing;
      }
      await apiAgain.client.runs.join(thread.thread_id, run.run_id);
      expect((await apiAgain.client.runs.get(thread.thread_id, run.run_id)).status).toBe("success");
    } finally {
      await worker.close();
      await apiAgain.close();
      await database.drop();
    }
  });
});

describe("a worker's default port", () => {
  const scaleOut = { databaseUrl: "postgres://postgres@127.0.0.1:5432/baton", redisUrl: "redis://127.0.0.1:6379" };

  it("is 8124 for role worker and 8123 otherwise, unless a port is given", () => {
    expect([DEFAULT_PORT, WORKER_PORT]).toEqual([8123, 8124]);
    expect(loadConfig({ role: "worker", ...scaleOut }, {}).port).toBe(8124);
    expect(loadConfig({ role: "api", ...scaleOut }, {}).port).toBe(8123);
    expect(loadConfig({ ...scaleOut }, {}).port).toBe(8123);
    expect(loadConfig({}, {}).port).toBe(8123);
    // Explicit, by flag, BATON_PORT or PORT, it wins for a worker too (0 included).
    expect(loadConfig({ role: "worker", port: "0", ...scaleOut }, {}).port).toBe(0);
    expect(loadConfig({ role: "worker", ...scaleOut }, { BATON_PORT: "9001" }).port).toBe(9001);
    expect(loadConfig({ role: "worker", ...scaleOut }, { PORT: "9002" }).port).toBe(9002);
    expect(loadConfig({ role: "worker", port: 9003, ...scaleOut }, { PORT: "9002" }).port).toBe(9003);
    expect(loadConfig({ ...scaleOut }, { BATON_ROLE: "worker" }).port).toBe(8124);
  });
});

/** Whether nothing listens on `port` of 127.0.0.1 now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createNetServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

// 8123 and 8124 may be taken on a shared machine: then the case with defaults cannot run here, and says so by being skipped.
const defaultsFree = EMBEDDED_PROJECT && (await portFree(8123)) && (await portFree(8124));

describe.runIf(EMBEDDED_PROJECT)("an API and a worker process on one host, started by the CLI", () => {
  async function both(portArgs: { api: string[]; worker: string[] }) {
    const database = await freshDatabase("health");
    const env = { DATABASE_URL: database.url, REDIS_URL, BATON_REDIS_PREFIX: `baton-test:${randomUUID()}:` };
    const api = runBaton(["serve", "--role", "api", "--config", FIXTURES, ...portArgs.api], { env });
    const apiUrl = await api.url;
    // The API migrated the database; the worker starts after it, as a deployment's migration job would order them.
    const worker = runBaton(["serve", "--role", "worker", "--config", FIXTURES, ...portArgs.worker], { env });
    const workerUrl = await worker.url;
    return {
      apiUrl,
      workerUrl,
      stop: async () => {
        api.child.kill("SIGTERM");
        worker.child.kill("SIGTERM");
        const codes = [await api.exited, await worker.exited];
        await database.drop();
        return codes;
      },
    };
  }

  async function expectHealthy(apiUrl: string, workerUrl: string) {
    expect(await get(apiUrl, "/ok")).toEqual({ status: 200, body: { ok: true } });
    expect(await get(apiUrl, "/ready")).toEqual({ status: 200, body: { ok: true, checks: { database: "ok", redis: "ok" } } });
    expect(await get(workerUrl, "/ok")).toEqual({ status: 200, body: { ok: true, role: "worker" } });
    expect(await get(workerUrl, "/ready")).toEqual({ status: 200, body: { ok: true, checks: { database: "ok", redis: "ok" } } });
    // The two together serve runs.
    const client = new Client({ apiUrl });
    const thread = await client.threads.create();
    const out = (await client.runs.wait(thread.thread_id, "echo", { input: human("hi") })) as { messages: { content: string }[] };
    expect(out.messages.length).toBeGreaterThan(0);
  }

  it("both answer /ok and /ready with explicit ports (0)", async () => {
    const { apiUrl, workerUrl, stop } = await both({ api: ["--port", "0"], worker: ["--port", "0"] });
    try {
      expect(apiUrl).not.toBe(workerUrl);
      await expectHealthy(apiUrl, workerUrl);
    } finally {
      expect(await stop()).toEqual([0, 0]);
    }
  });

  it.runIf(defaultsFree)("with defaults, the API listens on 8123 and the worker on 8124", async () => {
    const { apiUrl, workerUrl, stop } = await both({ api: [], worker: [] });
    try {
      expect(apiUrl).toBe("http://127.0.0.1:8123");
      expect(workerUrl).toBe("http://127.0.0.1:8124");
      await expectHealthy(apiUrl, workerUrl);
    } finally {
      expect(await stop()).toEqual([0, 0]);
    }
  });
});
