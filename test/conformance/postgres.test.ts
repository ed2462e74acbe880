import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresBackend, latestVersion, migrate, openPool } from "../../src/backends/postgres/index.ts";
import { FENCE_KEY } from "../../src/core/executor.ts";
import { describeRunQueue, ManualClock, newRun } from "../../src/testing/index.ts";
import { freshDatabase, type TestDatabase } from "../helpers/postgres.ts";

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase("conformance");
});
afterAll(async () => {
  await db.drop();
});

/** Each case gets an empty schema: the tables are truncated, not re-created. */
async function emptied(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("TRUNCATE assistants, assistant_versions, threads, runs, checkpoints, checkpoint_writes, store_items CASCADE");
  } finally {
    await client.end();
  }
}

describeRunQueue({
  name: "postgres",
  create: async (clock) => {
    const backend = await createPostgresBackend({ url: db.url, poolSize: 4, clock, migrate: true });
    await emptied(db.url);
    return backend;
  },
});

describe("postgres checkpoint writes of a worker", () => {
  it("are refused once the writing attempt lost its lease, and nothing is written (C3)", async () => {
    const clock = new ManualClock();
    const backend = await createPostgresBackend({ url: db.url, poolSize: 2, clock, migrate: true });
    try {
      await emptied(db.url);
      await backend.runs.create(newRun("t-fence", "r-fence"));
      const first = (await backend.runs.claim("w1", 1_000))!;
      const config = (attempt: number, owner: string) => ({
        configurable: { thread_id: "t-fence", checkpoint_ns: "", [FENCE_KEY]: { owner, attempt } },
        metadata: { run_id: "r-fence" },
      });
      const checkpoint = (id: string) => ({ v: 4, id, ts: new Date(0).toISOString(), channel_values: {}, channel_versions: {}, versions_seen: {} });
      const saved = await backend.checkpointer.put(config(first.attempt, "w1"), checkpoint("00000000-0000-6000-8000-000000000001"), { source: "loop", step: 0, parents: {} }, {});
      await backend.checkpointer.putWrites({ ...saved, ...config(first.attempt, "w1"), configurable: { ...config(first.attempt, "w1").configurable, ...saved.configurable } }, [["messages", "kept"]], "task-1");

      // The lease expires; the run is requeued and claimed by another worker.
      clock.advance(2_000);
      await backend.runs.sweep(3);
      const second = (await backend.runs.claim("w2", 30_000))!;
      expect(second.attempt).toBe(2);

      const stale = config(first.attempt, "w1");
      await expect(backend.checkpointer.put(stale, checkpoint("00000000-0000-6000-8000-000000000002"), { source: "loop", step: 1, parents: {} }, {})).rejects.toThrow(/lost its lease/);
      await expect(
        backend.checkpointer.putWrites({ ...stale, configurable: { ...stale.configurable, checkpoint_id: "00000000-0000-6000-8000-000000000001" } }, [["messages", "stale"]], "task-2"),
      ).rejects.toThrow(/lost its lease/);
      const history = [];
      for await (const tuple of backend.checkpointer.list({ configurable: { thread_id: "t-fence" } })) history.push(tuple);
      expect(history.map((t) => t.checkpoint.id)).toEqual(["00000000-0000-6000-8000-000000000001"]);
      expect(history[0]!.pendingWrites?.map(([, , value]) => value)).toEqual(["kept"]);
      // The new attempt writes.
      await backend.checkpointer.put(config(second.attempt, "w2"), checkpoint("00000000-0000-6000-8000-000000000003"), { source: "loop", step: 1, parents: {} }, {});
    } finally {
      await backend.close();
    }
  });
});

describe("postgres claim", () => {
  it("refuses, with a message saying why, to claim in a session that is not READ COMMITTED", async () => {
    const pool = openPool({ url: db.url, max: 1 });
    try {
      await migrate(pool);
      await pool.query("SET default_transaction_isolation = 'repeatable read'");
      await expect(pool.query("SELECT * FROM baton_claim(0, 3, 'w1', 1, 'now')")).rejects.toThrow(
        /Baton needs READ COMMITTED transactions \(the Postgres default\); this session uses repeatable read/,
      );
    } finally {
      await pool.end();
    }
  });
});

describe("postgres thread prune", () => {
  it("leaves alone a thread whose run was claimed while the prune waited for its lock", async () => {
    const backend = await createPostgresBackend({ url: db.url, poolSize: 2, clock: new ManualClock(), migrate: true });
    const claimer = new pg.Client({ connectionString: db.url });
    await claimer.connect();
    try {
      await emptied(db.url);
      await backend.threads.create({ thread_id: "t-prune", metadata: {}, if_exists: "raise" });
      await backend.runs.create(newRun("t-prune", "r-prune"));
      // A claim in flight: it holds the thread's row and has marked the run running, not yet committed.
      await claimer.query("BEGIN");
      await claimer.query("SELECT 1 FROM threads WHERE thread_id = 't-prune' FOR UPDATE");
      await claimer.query("UPDATE runs SET status = 'running' WHERE run_id = 'r-prune'");
      const pruning = backend.threads.prune(["t-prune"], "delete");
      // The prune is waiting for the thread's lock (its first statement's snapshot predates the claim's commit).
      for (;;) {
        const { rows } = await claimer.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.datname = current_database()",
        );
        if (rows[0]!.n > 0) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      await claimer.query("COMMIT");
      expect(await pruning).toEqual({ pruned: 0, pending_runs: [] });
      expect(await backend.threads.get("t-prune")).not.toBeNull();
      expect((await backend.runs.get("r-prune"))?.status).toBe("running");
    } finally {
      await claimer.end();
      await backend.close();
    }
  });
});

describe("postgres migrations", () => {
  it("without migrating, refuses a database that has no Baton schema, saying how to make one", async () => {
    const fresh = await freshDatabase("unmigrated");
    try {
      await expect(createPostgresBackend({ url: fresh.url, poolSize: 1, clock: new ManualClock(), migrate: false })).rejects.toThrow(
        /no Baton schema yet: run `baton migrate`/,
      );
    } finally {
      await fresh.drop();
    }
  });

  it("are safe when several processes run them at once, and refuse a newer database", async () => {
    const fresh = await freshDatabase("migrations");
    try {
      const pools = Array.from({ length: 4 }, () => openPool({ url: fresh.url, max: 1 }));
      const applied = await Promise.all(pools.map((pool) => migrate(pool)));
      // Exactly one caller applied each version; the others found them done.
      expect(applied.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: latestVersion() }, (_, i) => i + 1));
      await pools[0]!.query("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 'test')");
      await expect(migrate(pools[1]!)).rejects.toThrow(/schema version 999, newer than this Baton knows/);
      await Promise.all(pools.map((pool) => pool.end()));
    } finally {
      await fresh.drop();
    }
  });
});
