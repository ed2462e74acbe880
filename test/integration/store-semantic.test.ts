/**
 * The store's semantic search (store.index) and item TTLs (store.ttl),
 * through the official SDK, on the backend of the vitest project (SQLite, or
 * Postgres in "scale-out"). Embeddings come from a deterministic fixture
 * (test/fixtures/projects/store-index/embed.ts: counts of four words), so
 * scores are known; time is a ManualClock the test moves, so TTLs expire
 * when the test says, and the sweeper is awaited by reading the database.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@langchain/langgraph-sdk";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, loadProject } from "../../src/config.ts";
import type { Authorization, Authorizer } from "../../src/core/authorizer.ts";
import { systemClock, type Clock } from "../../src/core/clock.ts";
import type { RequestContext } from "../../src/core/context.ts";
import { createLogger, createServer, type BatonServer } from "../../src/server.ts";
import { ManualClock } from "../../src/testing/index.ts";
import { encodeNamespace } from "../../src/backends/namespaces.ts";
import { DATABASE_URL, freshDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { EXECUTION_THREADS, REDIS_URL, SCALE_OUT, until } from "../helpers/server.ts";

const PROJECT = join(import.meta.dirname, "../fixtures/projects/store-index");
const MINUTE = 60_000;

interface StoreServer {
  server: BatonServer;
  client: Client;
  /** Rows of a table under a namespace prefix, read from the database itself (what the sweeper deleted). */
  rows(table: "store_items" | "store_vectors", prefix: string[]): Promise<number>;
  /** Its data, for another server to open. */
  data: { dataDir: string; database: TestDatabase | undefined };
  /** `keep`: leave the data for another server (which then owns nothing either: drop it with `dropData`). */
  close(keep?: boolean): Promise<void>;
}

interface StoreOptions {
  /** Another server's data (its data directory or database), kept when this one closes. */
  shared?: { dataDir: string; database: TestDatabase | undefined };
  /** Receives every log line at warn and above (at `logLevel` when given). */
  logs?: string[];
  logLevel?: "debug" | "info" | "warn";
  /** The access seam's authorizer (the project's Auth handlers, in a real deployment). */
  authorizer?: Authorizer;
  /** Server options (src/config.ts) on top of the test's own. */
  config?: Record<string, unknown>;
}

async function startStore(project: string, clock: Clock, options: StoreOptions = {}): Promise<StoreServer> {
  const owned = options.shared === undefined;
  const dataDir = options.shared?.dataDir ?? mkdtempSync(join(tmpdir(), "baton-store-"));
  const database: TestDatabase | undefined = options.shared !== undefined ? options.shared.database : SCALE_OUT ? await freshDatabase("store") : undefined;
  const backend =
    database === undefined
      ? { executionThreads: EXECUTION_THREADS }
      : { databaseUrl: database.url, redisUrl: REDIS_URL, redisPrefix: `baton-test:${randomUUID()}:` };
  const config = loadConfig({ port: 0, dataDir, configPath: join(PROJECT, project), shutdownGraceMs: 0, ...backend, ...options.config }, {});
  const logger = createLogger({ level: options.logLevel ?? "warn", format: "json", write: (line) => (options.logs ? options.logs.push(line) : process.stderr.write(line)) });
  let server: BatonServer;
  try {
    server = await createServer(config, loadProject(config.configPath, {}), logger, clock, options.authorizer === undefined ? {} : { authorizer: options.authorizer });
  } catch (error) {
    if (owned) {
      await database?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
    throw error;
  }
  return {
    server,
    client: new Client({ apiUrl: server.url }),
    async rows(table, prefix) {
      const encoded = encodeNamespace(prefix);
      if (database === undefined) {
        const db = new Database(join(dataDir, "baton.sqlite"), { readonly: true });
        try {
          return (db.prepare(`SELECT count(*) AS n FROM ${table} WHERE substr(namespace, 1, ?) = ?`).get(encoded.length, encoded) as { n: number }).n;
        } finally {
          db.close();
        }
      }
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        return Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE left(namespace, length($1)) = $1`, [encoded])).rows[0]!.n);
      } finally {
        await client.end();
      }
    },
    data: { dataDir, database },
    async close(keep = false) {
      await server.close(0);
      if (!owned || keep) return;
      await database?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function dropData(data: StoreServer["data"]): Promise<void> {
  await data.database?.drop();
  rmSync(data.dataDir, { recursive: true, force: true });
}

/** What a search answered, as [key, score] pairs (score absent: undefined). */
const ranked = (items: { key: string; score?: number | null }[]) => items.map((item) => [item.key, item.score]);
const close = (value: number) => expect.closeTo(value, 5);

/**
 * Whether the scale-out project's Postgres server has pgvector (Debian has
 * no package: docs/store.md says how to build it). Without it the pgvector
 * cases below are skipped, and the search is the exact scan everywhere.
 */
const PGVECTOR_AVAILABLE = SCALE_OUT && (await (async () => {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    const version = (await client.query<{ v: string }>("SELECT default_version AS v FROM pg_available_extensions WHERE name = 'vector'")).rows[0]?.v;
    const [major = 0, minor = 0] = (version ?? "0").split(".").map(Number);
    return version !== undefined && (major > 0 || minor >= 8);
  } finally {
    await client.end();
  }
})());

describe("store semantic search and TTLs", () => {
  const clock = new ManualClock(Date.now());
  let s: StoreServer;
  beforeAll(async () => {
    s = await startStore("langgraph.json", clock);
  });
  afterAll(async () => {
    await s?.close();
  });

  it("ranks items by similarity to the query, with scores; items not indexed are left out (as the official PostgresStore does)", async () => {
    const ns = ["rank", randomUUID()];
    // A millisecond apart, so the listing's order (last updated first) is known.
    for (const [key, value, options] of [
      ["two-cats", { text: "cat cat dog", kind: "pet" }, {}],
      ["one-cat", { text: "cat dog dog", kind: "pet" }, {}],
      ["fish", { text: "fish", kind: "food" }, {}],
      ["hidden-cat", { text: "cat", kind: "pet" }, { index: false }],
    ] as const) {
      clock.advance(1);
      await s.client.store.putItem(ns, key, value, options);
    }

    const { items } = await s.client.store.searchItems(ns, { query: "cat" });
    expect(ranked(items)).toEqual([
      ["two-cats", close(2 / Math.sqrt(5))],
      ["one-cat", close(1 / Math.sqrt(5))],
      ["fish", 0],
    ]);
    expect(items[0]).toMatchObject({ namespace: ns, value: { text: "cat cat dog", kind: "pet" } });

    // Pages of the ranking, and a filter combined with the query.
    expect(ranked((await s.client.store.searchItems(ns, { query: "cat", limit: 2, offset: 1 })).items).map(([key]) => key)).toEqual(["one-cat", "fish"]);
    expect(ranked((await s.client.store.searchItems(ns, { query: "fish dog", filter: { kind: "pet" } })).items)).toEqual([
      ["one-cat", close(2 / Math.sqrt(10))],
      ["two-cats", close(1 / Math.sqrt(10))],
    ]);

    // An empty prefix searches every namespace.
    const everywhere = (await s.client.store.searchItems([], { query: "cat", limit: 1_000 })).items;
    expect(ranked(everywhere.filter((item) => item.namespace[1] === ns[1]))).toEqual(ranked(items));

    // Without a query: the listing of today (last updated first), no scores.
    const listed = (await s.client.store.searchItems(ns)).items;
    expect(listed.map((item) => item.key)).toEqual(["hidden-cat", "fish", "one-cat", "two-cats"]);
    expect(listed.every((item) => !("score" in item))).toBe(true);
  });

  it("embeds the configured fields (every element of tags[*]), or the put's own list; a new put replaces the embeddings", async () => {
    const ns = ["fields", randomUUID()];
    // "text" says fish, but one of the tags says cat: the best text counts.
    await s.client.store.putItem(ns, "tagged", { text: "fish", tags: ["bird", "cat"] });
    // Only "title" is embedded for this put; "text" (cat) is not.
    await s.client.store.putItem(ns, "titled", { text: "cat", title: "dog" }, { index: ["title"] });
    // A field that is not in the value: nothing to embed, so never found by a query.
    await s.client.store.putItem(ns, "untitled", { body: "cat" });
    expect(ranked((await s.client.store.searchItems(ns, { query: "cat" })).items)).toEqual([
      ["tagged", close(1)],
      ["titled", 0],
    ]);
    await s.client.store.putItem(ns, "tagged", { text: "fish" });
    expect(ranked((await s.client.store.searchItems(ns, { query: "fish" })).items)[0]).toEqual(["tagged", close(1)]);
    expect(ranked((await s.client.store.searchItems(ns, { query: "cat" })).items).find(([key]) => key === "tagged")).toEqual(["tagged", 0]);
  });

  it("serves concurrent searches whose scans take several batches (each yields to the event loop), all with the same answer", async () => {
    const ns = ["concurrent", randomUUID()];
    // 3 items of 250 embedded tags each: 750 embedding rows, more than one batch of the scan.
    for (const [i, word] of ["cat", "dog", "fish"].entries()) {
      clock.advance(1);
      await s.client.store.putItem(ns, `k${i}`, { text: word, tags: Array.from({ length: 249 }, () => "bird") }, { index: ["text", "tags[*]"] });
    }
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => s.client.store.searchItems(ns, { query: ["cat", "dog", "fish"][i % 3]!, limit: 1 })));
    expect(answers.map(({ items }) => ranked(items))).toEqual(Array.from({ length: 6 }, (_, i) => [[`k${i % 3}`, close(1)]]));
  });

  it("embeds each path of a {a,b} field, as LangGraph's paths do", async () => {
    const ns = ["braces", randomUUID()];
    await s.client.store.putItem(ns, "k", { meta: { title: "fish", author: "dog", body: "cat" } }, { index: ["meta.{title, author}"] });
    expect(ranked((await s.client.store.searchItems(ns, { query: "dog" })).items)).toEqual([["k", close(1)]]);
    expect(ranked((await s.client.store.searchItems(ns, { query: "fish" })).items)).toEqual([["k", close(1)]]);
    // body is not one of them: its best text ("fish" or "dog") does not look like "cat" at all.
    expect(ranked((await s.client.store.searchItems(ns, { query: "cat" })).items)).toEqual([["k", 0]]);
  });

  it("refuses (422) a put that would embed more than 1,000 texts, naming the field that finds them", async () => {
    const ns = ["many", randomUUID()];
    const response = await fetch(`${s.server.url}/store/items`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ namespace: ns, key: "k", value: { text: "cat", tags: Array.from({ length: 1_000 }, () => "dog") } }),
    });
    expect(response.status).toBe(422);
    expect(((await response.json()) as { detail: string }).detail).toBe(
      "This put would embed 1001 texts, more than the 1000 one put may embed; the field 'tags[*]' alone finds 1000. Index fewer fields (index: [...]) or put fewer values under 'tags[*]'.",
    );
    expect(await s.client.store.getItem(ns, "k")).toBeNull();
  });

  it("hides an item once its TTL passes, and the sweeper deletes it and its embeddings", async () => {
    const ns = ["ttl", randomUUID()];
    await s.client.store.putItem(ns, "short", { text: "cat" }, { ttl: 1 });
    await s.client.store.putItem(ns, "forever", { text: "cat" });
    const created = (await s.client.store.getItem(ns, "short"))!.createdAt;
    clock.advance(MINUTE - 1);
    expect(await s.client.store.getItem(ns, "short", { refreshTtl: false })).not.toBeNull();
    clock.advance(1);
    expect(await s.client.store.getItem(ns, "short")).toBeNull();
    expect((await s.client.store.searchItems(ns, { query: "cat" })).items.map((item) => item.key)).toEqual(["forever"]);
    expect((await s.client.store.searchItems(ns)).items.map((item) => item.key)).toEqual(["forever"]);
    await s.client.store.putItem([...ns, "gone"], "k", { text: "x" }, { ttl: 1 });
    clock.advance(MINUTE);
    expect((await s.client.store.listNamespaces({ prefix: ns })).namespaces).toEqual([ns]);

    // The sweeper (every 0.3 s in this project) deletes the rows and their embeddings; the live item stays.
    await until(async () => ((await s.rows("store_items", ns)) === 1 ? true : undefined), "the sweeper to delete the expired items");
    expect(await s.rows("store_vectors", ns)).toBe(1);
    expect((await s.client.store.getItem(ns, "forever"))?.value).toEqual({ text: "cat" });

    // Put again after expiry: a new item (its own created_at), not the old one revived.
    clock.advance(1000);
    await s.client.store.putItem(ns, "short", { text: "dog" }, { ttl: 1 });
    const again = await s.client.store.getItem(ns, "short");
    expect(again?.value).toEqual({ text: "dog" });
    expect(again!.createdAt > created).toBe(true);
  });

  it("refreshes a TTL on get and search (refresh_on_read), unless the read says refresh_ttl false", async () => {
    const ns = ["refresh", randomUUID()];
    await s.client.store.putItem(ns, "read", { text: "cat" }, { ttl: 1 });
    await s.client.store.putItem(ns, "searched", { text: "dog" }, { ttl: 1 });
    await s.client.store.putItem(ns, "unread", { text: "fish" }, { ttl: 1 });
    clock.advance(40_000);
    expect(await s.client.store.getItem(ns, "read")).not.toBeNull();
    expect((await s.client.store.searchItems(ns, { query: "dog", limit: 1 })).items.map((item) => item.key)).toEqual(["searched"]);
    // Not refreshed: read with refresh_ttl false, or not returned by the search.
    expect(await s.client.store.getItem(ns, "unread", { refreshTtl: false })).not.toBeNull();
    expect((await s.client.store.searchItems(ns, { query: "fish", limit: 1, refreshTtl: false })).items.map((item) => item.key)).toEqual(["unread"]);
    clock.advance(40_000);
    expect(await s.client.store.getItem(ns, "unread")).toBeNull();
    expect(await s.client.store.getItem(ns, "read", { refreshTtl: false })).not.toBeNull();
    expect(await s.client.store.getItem(ns, "searched", { refreshTtl: false })).not.toBeNull();
    clock.advance(21_000);
    expect(await s.client.store.getItem(ns, "read")).toBeNull();
    expect(await s.client.store.getItem(ns, "searched")).toBeNull();
  });
});

describe("store.ttl defaults and an Embeddings object", () => {
  const clock = new ManualClock(Date.now());
  let s: StoreServer;
  beforeAll(async () => {
    s = await startStore("langgraph.embeddings.json", clock);
  });
  afterAll(async () => {
    await s?.close();
  });

  it("gives a put without ttl the default_ttl, never refreshes it when refresh_on_read is false, and ttl null never expires", async () => {
    const ns = ["defaults", randomUUID()];
    await s.client.store.putItem(ns, "default", { text: "cat" });
    await s.client.store.putItem(ns, "never", { text: "cat" }, { ttl: null as unknown as number });
    clock.advance(40_000);
    expect(await s.client.store.getItem(ns, "default")).not.toBeNull();
    expect((await s.client.store.searchItems(ns, { query: "cat" })).items).toHaveLength(2);
    clock.advance(20_000);
    expect(await s.client.store.getItem(ns, "default")).toBeNull();
    // An explicit refresh_ttl true still refreshes.
    await s.client.store.putItem(ns, "asked", { text: "dog" });
    clock.advance(40_000);
    expect(await s.client.store.getItem(ns, "asked", { refreshTtl: true })).not.toBeNull();
    clock.advance(40_000);
    expect(await s.client.store.getItem(ns, "asked")).not.toBeNull();
    clock.advance(525_600 * MINUTE);
    expect((await s.client.store.getItem(ns, "never"))?.value).toEqual({ text: "cat" });
  });

  it("embeds the whole value when store.index.fields is left out ($)", async () => {
    const ns = ["whole", randomUUID()];
    await s.client.store.putItem(ns, "k", { a: "cat", b: { c: "cat" } }, { ttl: null as unknown as number });
    // The JSON text of the value: its keys are no vocabulary words, its two "cat"s are.
    expect(ranked((await s.client.store.searchItems(ns, { query: "cat" })).items)).toEqual([["k", close(1)]]);
  });
});

describe("store.index at start", () => {
  it("refuses an embedding function whose vectors do not have store.index.dims numbers", async () => {
    await expect(startStore("langgraph.short.json", systemClock)).rejects.toThrow(/returned vectors of 3 dimensions; langgraph\.json store\.index\.dims is 4/);
  });

  it("refuses a start whose store.index.dims differs from the embeddings already stored", async () => {
    const first = await startStore("langgraph.json", systemClock);
    await first.client.store.putItem(["dims"], "k", { text: "cat" });
    await first.close(true);
    try {
      await expect(startStore("langgraph.dims3.json", systemClock, { shared: first.data })).rejects.toThrow(/the store holds embeddings of 4 dimensions, but store\.index\.dims is 3/);
    } finally {
      await dropData(first.data);
    }
  });

  it("starts, with a warning, when the probe of the project's own function throws (a service down for a moment); dims are then checked on use", async () => {
    const logs: string[] = [];
    const s = await startStore("langgraph.flaky.json", systemClock, { logs });
    try {
      expect(logs.map((line) => JSON.parse(line) as { msg: string; reason?: string })).toContainEqual(
        expect.objectContaining({ msg: "store:embed-probe-failed", reason: expect.stringContaining("getaddrinfo EAI_AGAIN embeddings.internal") }),
      );
      await s.client.store.putItem(["flaky"], "k", { text: "cat" });
      expect(ranked((await s.client.store.searchItems(["flaky"], { query: "cat" })).items)).toEqual([["k", close(1)]]);
    } finally {
      await s.close();
    }
  });

  it("reports at start whether Postgres has pgvector (installed, available or absent; none on SQLite), and which search it uses", async () => {
    const logs: string[] = [];
    const s = await startStore("langgraph.json", systemClock, { logs, logLevel: "info" });
    try {
      const ready = logs.map((line) => JSON.parse(line) as { msg: string; pgvector?: string | null; search?: string; exact_because?: string }).find((line) => line.msg === "store:ready");
      if (s.data.database === undefined) {
        expect(ready?.search).toMatch(/^exact scan/);
        expect(ready?.pgvector).toBeNull();
        return;
      }
      // The default (auto): pgvector's index where the server has the extension (it is then installed), else the exact scan, saying why.
      if (PGVECTOR_AVAILABLE) {
        expect(ready).toMatchObject({ search: "pgvector (HNSW index on cosine distance)", pgvector: "installed" });
      } else {
        expect(ready).toMatchObject({ search: expect.stringMatching(/^exact scan/), pgvector: "absent", exact_because: "the database server does not have the pgvector extension" });
      }
    } finally {
      await s.close();
    }
  });

  it("refuses a provider whose LangChain integration is not installed, naming the package to install", async () => {
    await expect(startStore("langgraph.provider.json", systemClock)).rejects.toThrow(/needs the LangChain integration @langchain\/cohere.*npm install @langchain\/cohere/);
  });

  it("serves graphs the same store: a graph's put is embedded and its search scored", async () => {
    const s = await startStore("langgraph.json", systemClock);
    try {
      const thread = await s.client.threads.create();
      const state = (await s.client.runs.wait(thread.thread_id, "remember", { input: { text: "cat cat" } })) as { found: { key: string; score: number }[] };
      expect(state.found).toEqual([{ key: "cat-cat", score: close(1) }]);
      const { items } = await s.client.store.searchItems(["graph"], { query: "cat" });
      expect(ranked(items)).toEqual([["cat-cat", close(1)]]);
    } finally {
      await s.close();
    }
  });
});

describe.runIf(SCALE_OUT)("store sweepers in several processes", () => {
  it("two servers on one database (as two processes are) both sweep, sharing the same expired items without failing", async () => {
    const clock = new ManualClock(Date.now());
    const logs = { one: [] as string[], two: [] as string[] };
    const one = await startStore("langgraph.json", clock, { logs: logs.one, logLevel: "debug" });
    const two = await startStore("langgraph.json", clock, { shared: one.data, logs: logs.two, logLevel: "debug" });
    /** The sweeps a server logged (each logs one, at debug when it deleted nothing). */
    const sweeps = (lines: string[]) => lines.map((line) => JSON.parse(line) as { msg: string; deleted?: number }).filter((line) => line.msg === "store:swept");
    try {
      const ns = ["swept", randomUUID()];
      await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? one : two).client.store.putItem(ns, `k${i}`, { text: "cat", tags: ["dog"] }, { ttl: 1 })));
      await one.client.store.putItem(ns, "kept", { text: "cat" });
      expect(await one.rows("store_items", ns)).toBe(61);
      const before = { one: sweeps(logs.one).length, two: sweeps(logs.two).length };
      clock.advance(MINUTE);
      // Invisible at once in both processes, before any sweep.
      expect((await two.client.store.searchItems(ns, { query: "cat", limit: 100 })).items.map((item) => item.key)).toEqual(["kept"]);
      await until(async () => ((await one.rows("store_items", ns)) === 1 ? true : undefined), "the sweepers to delete the expired items");
      expect(await one.rows("store_vectors", ns)).toBe(1);
      // Each process's sweeper ran after the items expired (one of them may have found nothing left).
      await until(async () => (sweeps(logs.one).length > before.one && sweeps(logs.two).length > before.two ? true : undefined), "both sweepers to sweep");
      const deleted = [...sweeps(logs.one), ...sweeps(logs.two)].reduce((sum, line) => sum + (line.deleted ?? 0), 0);
      expect(deleted).toBe(60);
      expect([...logs.one, ...logs.two].filter((line) => line.includes("store:sweep-failed"))).toEqual([]);
    } finally {
      await two.close();
      await one.close();
    }
  });
});

/** Texts of the fixture's four words, varied and often alike (ties), from a seed. */
function texts(count: number, seed: number): string[] {
  const words = ["cat", "dog", "fish", "bird"];
  let state = seed;
  const next = () => (state = (state * 1_103_515_245 + 12_345) % 2_147_483_648);
  const pick = (n: number) => (next() >>> 16) % n;
  return Array.from({ length: count }, () => Array.from({ length: 1 + pick(4) }, () => words[pick(4)]).join(" "));
}

const pgvectorSkip = !SCALE_OUT ? "; skipped: Postgres only" : PGVECTOR_AVAILABLE ? "" : "; skipped: this Postgres server has no pgvector 0.8+ (docs/store.md says how to build it)";
describe.skipIf(!PGVECTOR_AVAILABLE)(`store search with pgvector${pgvectorSkip}`, () => {
  it("ranks as the exact scan does: the same items, order and scores, with filters, pages, ties and zero vectors", async () => {
    // Two processes on one new database, started at once: one sets pgvector up, the other finds it ready.
    const data = { dataDir: mkdtempSync(join(tmpdir(), "baton-store-")), database: await freshDatabase("pgvector") };
    const admin = new pg.Client({ connectionString: data.database.url });
    await admin.connect();
    const databaseName = new URL(data.database.url).pathname.slice(1);
    // On a table this small the planner would rank in SQL without the index (exact, as it does for a narrow
    // filter): with sorting priced out, the searches here walk the HNSW index, iterative scans and all.
    await admin.query(`ALTER DATABASE ${databaseName} SET enable_sort = off`);
    const [indexed, other] = await Promise.all([startStore("langgraph.json", systemClock, { shared: data }), startStore("langgraph.json", systemClock, { shared: data })]);
    const exact = await startStore("langgraph.json", systemClock, { shared: data, config: { storeVectorSearch: "exact" } });
    let again: StoreServer | undefined;
    try {
      const ns = ["pgvector", randomUUID()];
      // None of the fixture's four words in "hello": a zero vector, which the index leaves out.
      const bodies = texts(300, 7).map((text, i) => (i % 37 === 0 ? "hello" : text));
      // Written by all three processes: each fills the vector column.
      for (const [i, text] of bodies.entries()) await [indexed, other, exact][i % 3]!.client.store.putItem([...ns, i % 2 === 0 ? "even" : "odd"], `k${i}`, { text, kind: i % 5 === 0 ? "rare" : "common", few: i % 50 === 7 });
      const searches = [
        { query: "cat" },
        // Far more items tie at the top than the page holds: the ties are broken by the listing order.
        { query: "cat", limit: 3 },
        { query: "dog", limit: 2, offset: 2 },
        { query: "dog dog fish", limit: 25 },
        { query: "bird", limit: 7, offset: 40 },
        { query: "cat fish", filter: { kind: "rare" }, limit: 100 },
        // A filter only 6 items pass: fewer than the page, so the index's answer is checked by ranking them in SQL.
        { query: "cat", filter: { few: true }, limit: 10 },
        { query: "fish", namespace_prefix: [...ns, "odd"], limit: 30, offset: 5 },
        // Down to the zero vectors (score 0, below the negative-free rest), and a query of zeros.
        { query: "cat", limit: 20, offset: 280 },
        { query: "hello", limit: 5 },
      ];
      const ask = (s: StoreServer, search: (typeof searches)[number]) => s.client.store.searchItems(search.namespace_prefix ?? ns, { ...search });
      const wants: unknown[] = [];
      for (const search of searches) {
        const want = ranked((await ask(exact, search)).items);
        expect(want.length).toBeGreaterThan(0);
        wants.push(want.map(([key, score]) => [key, close(score as number)]));
        for (const s of [indexed, other]) expect(ranked((await ask(s, search)).items)).toEqual(wants.at(-1));
      }
      // The index was walked (statistics reach the view within a second or so).
      const scans = async () => Number((await admin.query<{ n: string }>("SELECT idx_scan AS n FROM pg_stat_user_indexes WHERE indexrelname = 'store_vectors_hnsw'")).rows[0]?.n ?? 0);
      await until(async () => ((await scans()) > 0 ? true : undefined), "the HNSW index to be used");

      // With pgvector told to end its scans early (hnsw.max_scan_tuples), the searches the index answers short
      // (here every one that asks for more items than there are candidates) are ranked again in SQL: same answers.
      await admin.query(`ALTER DATABASE ${databaseName} SET hnsw.max_scan_tuples = 1`);
      again = await startStore("langgraph.json", systemClock, { shared: data });
      for (const [i, search] of searches.entries()) expect(ranked((await ask(again, search)).items)).toEqual(wants[i]);
    } finally {
      await admin.end();
      await again?.close();
      await exact.close();
      await other.close();
      await indexed.close();
      await dropData(data);
    }
  });

  it("fills the embeddings stored before, and still finds rows a process wrote without the vector column", async () => {
    const logs: string[] = [];
    const before = await startStore("langgraph.json", systemClock, { config: { storeVectorSearch: "exact" } });
    const ns = ["filled", randomUUID()];
    for (const [i, text] of texts(40, 3).entries()) await before.client.store.putItem(ns, `k${i}`, { text });
    const want = ranked((await before.client.store.searchItems(ns, { query: "cat dog", limit: 15 })).items);
    await before.close(true);
    // The exact scan's process never made the column: this start makes it and fills it.
    const after = await startStore("langgraph.json", systemClock, { shared: before.data, logs, logLevel: "info" });
    try {
      expect(logs.map((line) => JSON.parse(line) as { msg: string; rows?: number }).find((line) => line.msg === "store:vectors-filled")?.rows).toBe(40);
      expect(ranked((await after.client.store.searchItems(ns, { query: "cat dog", limit: 15 })).items)).toEqual(want.map(([key, score]) => [key, close(score as number)]));
      // As a process started before pgvector would write: the row has no vector, and is still ranked.
      const db = new pg.Client({ connectionString: before.data.database!.url });
      await db.connect();
      try {
        await db.query("UPDATE store_vectors SET embedding_v = NULL WHERE key IN ('k0', 'k1', 'k2')");
      } finally {
        await db.end();
      }
      expect(ranked((await after.client.store.searchItems(ns, { query: "cat dog", limit: 15 })).items)).toEqual(want.map(([key, score]) => [key, close(score as number)]));
    } finally {
      await after.close();
      await dropData(before.data);
    }
  });

  it("storeVectorSearch exact keeps the exact scan, saying so", async () => {
    const logs: string[] = [];
    const s = await startStore("langgraph.json", systemClock, { logs, logLevel: "info", config: { storeVectorSearch: "exact" } });
    try {
      const ready = logs.map((line) => JSON.parse(line) as { msg: string }).find((line) => line.msg === "store:ready");
      expect(ready).toMatchObject({ search: expect.stringMatching(/^exact scan/), exact_because: "BATON_STORE_VECTOR_SEARCH is exact" });
    } finally {
      await s.close();
    }
  });
});

describe("storeVectorSearch pgvector, where it cannot be had", () => {
  it("refuses to start rather than fall back to the exact scan (on SQLite, or beyond 2,000 dims); auto falls back, saying why", async () => {
    const because = SCALE_OUT ? /pgvector's HNSW index takes at most 2000 dimensions and store\.index\.dims is 2001/ : /storeVectorSearch is "pgvector", but it needs Postgres/;
    await expect(startStore("langgraph.wide.json", systemClock, { config: { storeVectorSearch: "pgvector" } })).rejects.toThrow(because);
    const logs: string[] = [];
    const s = await startStore("langgraph.wide.json", systemClock, { logs, logLevel: "info" });
    try {
      const ready = logs.map((line) => JSON.parse(line) as { msg: string; exact_because?: string }).find((line) => line.msg === "store:ready");
      expect(ready).toMatchObject({ search: expect.stringMatching(/^exact scan/) });
      if (SCALE_OUT) expect(ready?.exact_because).toBe("pgvector's HNSW index takes at most 2000 dimensions and store.index.dims is 2001");
      await s.client.store.putItem(["wide"], "k", { text: "cat" });
      expect(ranked((await s.client.store.searchItems(["wide"], { query: "cat" })).items)).toEqual([["k", close(1997 / Math.sqrt(1996 * 1998))]]);
    } finally {
      await s.close();
    }
  });
});

describe("store embedding provider failures", () => {
  let s: StoreServer;
  beforeAll(async () => {
    s = await startStore("langgraph.json", systemClock, { config: { storeEmbedTimeoutMs: 300 } });
  });
  afterAll(async () => {
    await s?.close();
  });

  const put = (value: Record<string, unknown>) =>
    fetch(`${s.server.url}/store/items`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ namespace: ["failing"], key: "k", value }) });
  const search = (query: string) =>
    fetch(`${s.server.url}/store/items/search`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ namespace_prefix: ["failing"], query }) });
  const answer = async (response: Response) => ({ status: response.status, retryAfter: response.headers.get("retry-after"), detail: ((await response.json()) as { detail: string }).detail });

  it("answers 503 naming the provider and the first line of its error, for a put and a search; nothing is stored", async () => {
    const expected = { status: 503, retryAfter: null, detail: "store embedding provider ./embed.ts:embed failed: connect ECONNREFUSED 10.0.0.1:443" };
    expect(await answer(await put({ text: "provider-down" }))).toEqual(expected);
    expect(await answer(await search("provider-down"))).toEqual(expected);
    expect(await s.client.store.getItem(["failing"], "k")).toBeNull();
  });

  it("passes the provider's Retry-After on when it answered 429", async () => {
    expect(await answer(await put({ text: "rate-limited" }))).toEqual({ status: 503, retryAfter: "7", detail: "store embedding provider ./embed.ts:embed failed: 429 Rate limit reached for requests" });
  });

  it("gives up on a provider that does not answer within storeEmbedTimeoutMs (503)", async () => {
    expect(await answer(await search("provider-hangs"))).toEqual({ status: 503, retryAfter: null, detail: "store embedding provider ./embed.ts:embed failed: no answer within 0.3 s." });
  });

  it("names vectors of the wrong shape or with a non-finite element (502: the server's fault, not the request's)", async () => {
    expect(await answer(await put({ text: "wrong-shape" }))).toEqual({
      status: 502,
      retryAfter: null,
      detail: "store embedding provider ./embed.ts:embed returned vectors of 3 dimensions; langgraph.json store.index.dims is 4. Make them agree.",
    });
    expect(await answer(await search("not-finite"))).toEqual({
      status: 502,
      retryAfter: null,
      detail: "store embedding provider ./embed.ts:embed returned a vector whose element 1 is NaN, not a finite number.",
    });
    expect((await put({ text: "not-finite" })).status).toBe(502);
    expect(await s.client.store.getItem(["failing"], "k")).toBeNull();
    // The server still serves: a good put afterwards works.
    expect((await put({ text: "cat" })).status).toBe(204);
  });
});

describe("the exact scan's bound (storeSearchMaxCandidates)", () => {
  it("refuses (422) a search that would rank more items than the bound, and serves it once the filter narrows it", async () => {
    // The bound is the exact scan's: on Postgres, pgvector's index has none.
    const s = await startStore("langgraph.json", systemClock, { config: { storeSearchMaxCandidates: 3, storeVectorSearch: "exact" } });
    try {
      const ns = ["bounded", randomUUID()];
      for (const [key, kind] of [["a", "pet"], ["b", "pet"], ["c", "food"], ["d", "pet"]]) await s.client.store.putItem(ns, key!, { text: "cat", kind });
      // Not embedded: not a candidate.
      await s.client.store.putItem(ns, "e", { text: "cat" }, { index: false });
      const search = (body: Record<string, unknown>) =>
        fetch(`${s.server.url}/store/items/search`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ namespace_prefix: ns, query: "cat", ...body }) });
      const refused = await search({ limit: 1 });
      expect(refused.status).toBe(422);
      expect(((await refused.json()) as { detail: string }).detail).toBe("This semantic search would rank more than 3 items; narrow namespace_prefix or add a filter.");
      const narrowed = await search({ filter: { kind: "pet" } });
      expect(narrowed.status).toBe(200);
      expect(((await narrowed.json()) as { items: { key: string }[] }).items.map((item) => item.key)).toEqual(["d", "b", "a"]);
      // A listing without a query is not bounded by it.
      expect((await s.client.store.searchItems(ns)).items).toHaveLength(5);
    } finally {
      await s.close();
    }
  });
});

/** Each caller (x-user) sees only the store items whose value names it as owner, as an Auth handler's filter does. */
const ownersOnly: Authorizer = {
  authorize<V extends object>(ctx: RequestContext, resource: string, _action: string, value: V): Promise<Authorization<V>> {
    const user = ctx.headers["x-user"] ?? "nobody";
    return Promise.resolve(resource === "store" ? { value, filter: { owner: user } } : { value });
  },
};

describe("store semantic search through the access seam", () => {
  it("ranks only the items the caller's filter lets it see, with the client's filter and pages applied after", async () => {
    const s = await startStore("langgraph.json", systemClock, { authorizer: ownersOnly });
    try {
      const as = (user: string) => new Client({ apiUrl: s.server.url, defaultHeaders: { "x-user": user } });
      const alice = as("alice");
      const bob = as("bob");
      const ns = ["shared", randomUUID()];
      await bob.store.putItem(ns, "bob-cat", { text: "cat", owner: "bob" });
      await alice.store.putItem(ns, "alice-cat-dog", { text: "cat dog", owner: "alice", kind: "pet" });
      await alice.store.putItem(ns, "alice-fish", { text: "fish", owner: "alice", kind: "food" });
      expect(ranked((await alice.store.searchItems(ns, { query: "cat" })).items)).toEqual([
        ["alice-cat-dog", close(1 / Math.sqrt(2))],
        ["alice-fish", 0],
      ]);
      expect(ranked((await bob.store.searchItems(ns, { query: "fish" })).items)).toEqual([["bob-cat", 0]]);
      expect(ranked((await alice.store.searchItems(ns, { query: "cat", filter: { kind: "food" } })).items)).toEqual([["alice-fish", 0]]);
      expect(ranked((await alice.store.searchItems(ns, { query: "cat", offset: 1 })).items)).toEqual([["alice-fish", 0]]);
    } finally {
      await s.close();
    }
  });
});
