import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresBackend, migrate, openPool } from "../../src/backends/postgres/index.ts";
import { describeRunQueue } from "../../src/testing/index.ts";
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

describe("postgres migrations", () => {
  it("are safe when several processes run them at once, and refuse a newer database", async () => {
    const fresh = await freshDatabase("migrations");
    try {
      const pools = Array.from({ length: 4 }, () => openPool({ url: fresh.url, max: 1 }));
      const applied = await Promise.all(pools.map((pool) => migrate(pool)));
      // Exactly one caller applied version 1; the others found it done.
      expect(applied.flat().sort()).toEqual([1]);
      await pools[0]!.query("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 'test')");
      await expect(migrate(pools[1]!)).rejects.toThrow(/schema version 999, newer than this Baton knows/);
      await Promise.all(pools.map((pool) => pool.end()));
    } finally {
      await fresh.drop();
    }
  });
});
