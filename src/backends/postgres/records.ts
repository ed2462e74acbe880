/** Assistants, threads and store items on Postgres. */
import type pg from "pg";
import type { Clock } from "../../core/clock.ts";
import { isoFromMs } from "../../core/clock.ts";
import { BatonError, ErrorCode, conflict, notFound } from "../../core/errors.ts";
import type {
  AssistantPatch,
  AssistantSearch,
  Assistants,
  NewAssistant,
  Page,
  Scoped,
  ScoredStoreItem,
  StoreItems,
  StorePutOptions,
  StoreRead,
  StoreSearch,
  ThreadSearch,
  Threads,
} from "../../core/ports.ts";
import type { Filter } from "../../core/filter.ts";
import { compileFilter } from "../filter-sql.ts";
import type { ThreadTtl, TtlSweep } from "../../core/thread-ttl.ts";
import { pruneThreadRows, sweepExpiredThreads } from "./thread-prune.ts";
import { filterNamespaces, type NamespaceQuery } from "../namespaces.ts";
import { encodeVector, expiresAt, pageInOrder, SCAN_BATCH, SimilarityRanking, type EmbeddingRow, type RankedKey } from "../vectors.ts";
import { DEFAULT_SEARCH_MAX_CANDIDATES } from "../../core/store-index.ts";
import type { Assistant, IfExists, JsonObject, Metadata, StoreItem, Thread, ThreadStatus } from "../../core/types.ts";
import { pgvectorStatus, retryUnavailable, transaction, type PgvectorStatus, type Queryable } from "./database.ts";
import { hasUnfilledRows, indexable, mergeRankings, nearestItems, prepareVectorSearch, vectorText, type VectorSearchChoice, type VectorSearchMode } from "./store-vectors.ts";
import type { Logger } from "../../core/logger.ts";
import {
  deleteThreadRows,
  encodeNamespace,
  jsonb,
  jsonContains,
  toAssistant,
  toItem,
  toThread,
  type AssistantRow,
  type ItemRow,
  type ThreadRow,
} from "./rows.ts";

/**
 * Text columns sort by code point (COLLATE "C"), as SQLite's BINARY does,
 * whatever the database's collation: both backends page through the same
 * order. Timestamps (ISO text of one format) sort alike in any collation
 * and keep their index.
 */
const collated = (column: string) => (column === "created_at" || column === "updated_at" ? column : `${column} COLLATE "C"`);

const orderBy = (column: string | undefined, allowed: readonly string[], order: "asc" | "desc" | undefined, fallback: string) =>
  `${collated(column !== undefined && allowed.includes(column) ? column : fallback)} ${order === "asc" ? "ASC" : "DESC"}`;

/** The access filter's conditions on a JSONB column (none when it restricts nothing). */
const access = (column: string, filter: Filter | undefined, args: unknown[]): string[] => compileFilter("postgres", column, { access: filter }, args);

/** A store item's access document: its value, namespace and key. */
const ITEM = { value: "value", namespace: "namespace", key: "key" } as const;

/** A live store item: no TTL, or one not passed yet (the time, epoch ms, is argument `n`). */
const LIVE = (n: number) => `(expires_at_ms IS NULL OR expires_at_ms > $${n})`;

const where = (clauses: string[]) => (clauses.length > 0 ? ` WHERE ${clauses.join(" AND ")}` : "");

export class PostgresAssistants implements Assistants {
  constructor(
    private readonly pool: pg.Pool,
    private readonly clock: Clock,
  ) {}

  /** The assistant, unless missing or outside the access filter. */
  async #row(db: Queryable, id: string, lock = false, filter?: Filter): Promise<AssistantRow | undefined> {
    const args: unknown[] = [id];
    const clauses = ["assistant_id = $1", ...access("metadata", filter, args)];
    return (await db.query<AssistantRow>(`SELECT * FROM assistants${where(clauses)}${lock ? " FOR UPDATE" : ""}`, args)).rows[0];
  }

  async create(input: NewAssistant): Promise<Assistant> {
    return transaction(this.pool, async (db) => {
      if (await this.#insert(db, input)) return toAssistant((await this.#row(db, input.assistant_id))!);
      const existing = (await this.#row(db, input.assistant_id))!;
      if (input.if_exists === "do_nothing") return toAssistant(existing);
      throw conflict(`Assistant '${input.assistant_id}' already exists; use if_exists 'do_nothing' to get it instead.`);
    });
  }

  async ensure(input: Omit<NewAssistant, "if_exists">): Promise<void> {
    await transaction(this.pool, async (db) => {
      await this.#insert(db, input);
    });
  }

  /** Inserts the assistant and its version 1 unless it exists; returns whether it did. */
  async #insert(db: Queryable, input: Omit<NewAssistant, "if_exists">): Promise<boolean> {
    const iso = isoFromMs(this.clock.nowMs());
    const values = [input.graph_id, input.name, input.description, jsonb(input.config), jsonb(input.context), jsonb(input.metadata)];
    const inserted = await db.query(
      `INSERT INTO assistants (assistant_id, graph_id, name, description, config, context, metadata, version, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb, 1, $8, $8) ON CONFLICT (assistant_id) DO NOTHING`,
      [input.assistant_id, ...values, iso],
    );
    if (inserted.rowCount === 0) return false;
    await db.query(
      `INSERT INTO assistant_versions (assistant_id, version, graph_id, name, description, config, context, metadata, created_at)
       VALUES ($1, 1, $2, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8)`,
      [input.assistant_id, ...values, iso],
    );
    return true;
  }

  async get(assistantId: string, scope?: Scoped): Promise<Assistant | null> {
    // Read by every run as it starts: retried across a lost connection, as the checkpoints are.
    const row = await retryUnavailable(() => this.#row(this.pool, assistantId, false, scope?.access));
    return row === undefined ? null : toAssistant(row);
  }

  async patch(assistantId: string, patch: AssistantPatch, scope?: Scoped): Promise<Assistant> {
    return transaction(this.pool, async (db) => {
      const current = await this.#row(db, assistantId, true, scope?.access);
      if (current === undefined) throw notFound("Assistant", assistantId);
      const latest = (await db.query<{ v: number }>("SELECT MAX(version) AS v FROM assistant_versions WHERE assistant_id = $1", [assistantId])).rows[0]!.v;
      const version = latest + 1;
      const iso = isoFromMs(this.clock.nowMs());
      const next = [
        patch.graph_id ?? current.graph_id,
        patch.name ?? current.name,
        patch.description !== undefined ? patch.description : current.description,
        jsonb(patch.config !== undefined ? patch.config : current.config),
        jsonb(patch.context !== undefined ? patch.context : current.context),
        // Metadata is merged, as the official server does.
        jsonb({ ...current.metadata, ...(patch.metadata ?? {}) }),
      ];
      await db.query(
        `INSERT INTO assistant_versions (assistant_id, version, graph_id, name, description, config, context, metadata, created_at)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8::jsonb, $9)`,
        [assistantId, version, ...next, iso],
      );
      await db.query(
        `UPDATE assistants SET graph_id = $3, name = $4, description = $5, config = $6::jsonb, context = $7::jsonb, metadata = $8::jsonb,
                version = $2, updated_at = $9 WHERE assistant_id = $1`,
        [assistantId, version, ...next, iso],
      );
      return toAssistant((await this.#row(db, assistantId))!);
    });
  }

  async delete(assistantId: string, options?: { deleteThreads?: boolean } & Scoped): Promise<boolean> {
    return transaction(this.pool, async (db) => {
      if ((await this.#row(db, assistantId, true, options?.access)) === undefined) return false;
      if (options?.deleteThreads) {
        // Containment, as every filter: only a string equal to the id names it.
        const args: unknown[] = [];
        const named = compileFilter("postgres", "metadata", { contains: { assistant_id: assistantId } }, args);
        // Locked in id order, as prunes lock them (sweeps skip locked rows), so the two cannot deadlock.
        const threads = (await db.query<{ thread_id: string }>(`SELECT thread_id FROM threads${where(named)} ORDER BY thread_id COLLATE "C" FOR UPDATE`, args)).rows;
        for (const { thread_id } of threads) {
          const running = (await db.query<{ run_id: string }>("SELECT run_id FROM runs WHERE thread_id = $1 AND status = 'running'", [thread_id])).rows[0];
          if (running !== undefined) {
            throw conflict(`Thread '${thread_id}' of assistant '${assistantId}' has a running run ('${running.run_id}'); cancel it first. Nothing was deleted.`);
          }
          await deleteThreadRows(db, thread_id);
        }
      }
      // Its crons go with it, as on the official server (they could never fire again).
      await db.query("DELETE FROM crons WHERE assistant_id = $1", [assistantId]);
      await db.query("DELETE FROM assistants WHERE assistant_id = $1", [assistantId]);
      return true;
    });
  }

  #where(query: Omit<AssistantSearch, "limit" | "offset" | "sort_by" | "sort_order">, args: unknown[]): string {
    const clauses: string[] = [];
    if (query.graph_id !== undefined) {
      args.push(query.graph_id);
      clauses.push(`graph_id = $${args.length}`);
    }
    if (query.name !== undefined) {
      args.push(query.name);
      // Case folds ASCII letters only (the C collation), as SQLite's lower() does.
      clauses.push(`strpos(lower(name COLLATE "C"), lower($${args.length}::text COLLATE "C")) > 0`);
    }
    clauses.push(...compileFilter("postgres", "metadata", { contains: query.metadata, access: query.access }, args));
    return where(clauses);
  }

  async search(query: AssistantSearch): Promise<Assistant[]> {
    const args: unknown[] = [];
    const filter = this.#where(query, args);
    const order = orderBy(query.sort_by, ["assistant_id", "graph_id", "name", "created_at", "updated_at"], query.sort_order, "created_at");
    args.push(query.limit, query.offset);
    const sql = `SELECT * FROM assistants${filter} ORDER BY ${order}, assistant_id COLLATE "C" LIMIT $${args.length - 1} OFFSET $${args.length}`;
    return (await this.pool.query<AssistantRow>(sql, args)).rows.map(toAssistant);
  }

  async count(query: Omit<AssistantSearch, "limit" | "offset" | "sort_by" | "sort_order">): Promise<number> {
    const args: unknown[] = [];
    const filter = this.#where(query, args);
    return (await this.pool.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM assistants${filter}`, args)).rows[0]!.n;
  }

  async versions(assistantId: string, query: Page & Scoped & { metadata?: Metadata | undefined }): Promise<Assistant[]> {
    const args: unknown[] = [assistantId];
    // The access filter reads each version's own metadata, as the official server does.
    const clauses = ["assistant_id = $1", ...compileFilter("postgres", "metadata", { contains: query.metadata, access: query.access }, args)];
    args.push(query.limit, query.offset);
    const { rows } = await this.pool.query<Omit<AssistantRow, "updated_at">>(
      `SELECT * FROM assistant_versions${where(clauses)} ORDER BY version DESC LIMIT $${args.length - 1} OFFSET $${args.length}`,
      args,
    );
    return rows.map((row) => toAssistant({ ...row, updated_at: row.created_at }));
  }

  async setLatest(assistantId: string, version: number, scope?: Scoped): Promise<Assistant> {
    return transaction(this.pool, async (db) => {
      if ((await this.#row(db, assistantId, true, scope?.access)) === undefined) throw notFound("Assistant", assistantId);
      const updated = await db.query(
        `UPDATE assistants a SET graph_id = v.graph_id, name = v.name, description = v.description, config = v.config,
                context = v.context, metadata = v.metadata, version = v.version, updated_at = $3
           FROM assistant_versions v
          WHERE a.assistant_id = $1 AND v.assistant_id = $1 AND v.version = $2`,
        [assistantId, version, isoFromMs(this.clock.nowMs())],
      );
      if (updated.rowCount === 0) throw notFound("Assistant version", `${assistantId}@${version}`);
      return toAssistant((await this.#row(db, assistantId))!);
    });
  }
}

export class PostgresThreads implements Threads {
  constructor(
    private readonly pool: pg.Pool,
    private readonly clock: Clock,
  ) {}

  /** The thread, unless missing or outside the access filter. */
  async #row(db: Queryable, id: string, lock = false, filter?: Filter): Promise<ThreadRow | undefined> {
    const args: unknown[] = [id];
    const clauses = ["thread_id = $1", ...access("metadata", filter, args)];
    return (await db.query<ThreadRow>(`SELECT * FROM threads${where(clauses)}${lock ? " FOR UPDATE" : ""}`, args)).rows[0];
  }

  async create(input: { thread_id: string; metadata: Metadata; if_exists: IfExists; ttl?: ThreadTtl | null | undefined }): Promise<Thread> {
    const iso = isoFromMs(this.clock.nowMs());
    const inserted = await this.pool.query<ThreadRow>(
      `INSERT INTO threads (thread_id, created_at, updated_at, metadata, status, "values", interrupts, config, ttl_strategy, ttl_minutes)
       VALUES ($1, $2, $2, $3::jsonb, 'idle', NULL, '{}', '{}', $4, $5) ON CONFLICT (thread_id) DO NOTHING RETURNING *`,
      [input.thread_id, iso, jsonb(input.metadata), input.ttl?.strategy ?? null, input.ttl?.minutes ?? null],
    );
    if (inserted.rows[0] !== undefined) return toThread(inserted.rows[0]);
    if (input.if_exists !== "do_nothing") {
      throw conflict(`Thread '${input.thread_id}' already exists; use if_exists 'do_nothing' to get it instead.`);
    }
    const existing = await this.#row(this.pool, input.thread_id);
    if (existing === undefined) throw notFound("Thread", input.thread_id);
    return toThread(existing);
  }

  async get(threadId: string, scope?: Scoped): Promise<Thread | null> {
    const row = await retryUnavailable(() => this.#row(this.pool, threadId, false, scope?.access));
    return row === undefined ? null : toThread(row);
  }

  async patch(threadId: string, metadata: Metadata, scope?: Scoped, ttl?: ThreadTtl): Promise<Thread> {
    const args: unknown[] = [threadId, jsonb(metadata), isoFromMs(this.clock.nowMs()), ttl !== undefined, ttl?.strategy ?? null, ttl?.minutes ?? null];
    const clauses = ["thread_id = $1", ...access("metadata", scope?.access, args)];
    // With a TTL, it is replaced in the same statement; the trigger counts its expiry from the new updated_at.
    const { rows } = await this.pool.query<ThreadRow>(
      `UPDATE threads SET metadata = metadata || $2::jsonb, updated_at = $3,
              ttl_strategy = CASE WHEN $4::boolean THEN $5::text ELSE ttl_strategy END,
              ttl_minutes = CASE WHEN $4::boolean THEN $6::double precision ELSE ttl_minutes END${where(clauses)} RETURNING *`,
      args,
    );
    if (rows[0] === undefined) throw notFound("Thread", threadId);
    return toThread(rows[0]);
  }

  async delete(threadId: string, scope?: Scoped): Promise<boolean> {
    return transaction(this.pool, async (db) => {
      if ((await this.#row(db, threadId, true, scope?.access)) === undefined) return false;
      const running = (await db.query<{ run_id: string }>("SELECT run_id FROM runs WHERE thread_id = $1 AND status = 'running'", [threadId])).rows[0];
      if (running !== undefined) {
        throw new BatonError(ErrorCode.conflict, `Thread '${threadId}' has a running run ('${running.run_id}'); cancel it first, then delete the thread.`);
      }
      await deleteThreadRows(db, threadId);
      return true;
    });
  }

  #where(query: Omit<ThreadSearch, "limit" | "offset" | "sort_by" | "sort_order">, args: unknown[]): string {
    const clauses: string[] = [];
    if (query.ids !== undefined && query.ids.length > 0) {
      args.push(query.ids);
      clauses.push(`thread_id = ANY($${args.length}::text[])`);
    }
    if (query.status !== undefined) {
      args.push(query.status);
      clauses.push(`status = $${args.length}`);
    }
    clauses.push(...compileFilter("postgres", "metadata", { contains: query.metadata, access: query.access }, args));
    clauses.push(...jsonContains(`"values"`, query.values, args));
    return where(clauses);
  }

  async search(query: ThreadSearch): Promise<Thread[]> {
    const args: unknown[] = [];
    const filter = this.#where(query, args);
    const order = orderBy(query.sort_by, ["thread_id", "status", "created_at", "updated_at"], query.sort_order, "created_at");
    args.push(query.limit, query.offset);
    const sql = `SELECT * FROM threads${filter} ORDER BY ${order}, thread_id COLLATE "C" LIMIT $${args.length - 1} OFFSET $${args.length}`;
    return (await this.pool.query<ThreadRow>(sql, args)).rows.map(toThread);
  }

  async count(query: Omit<ThreadSearch, "limit" | "offset" | "sort_by" | "sort_order" | "ids">): Promise<number> {
    const args: unknown[] = [];
    const filter = this.#where(query, args);
    return (await this.pool.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM threads${filter}`, args)).rows[0]!.n;
  }

  async prune(threadIds: string[], strategy: "delete" | "keep_latest"): Promise<{ pruned: number; pending_runs: string[] }> {
    if (threadIds.length === 0) return { pruned: 0, pending_runs: [] };
    // One transaction whatever the number of ids (each list is one array
    // parameter); threads are locked in id order, as every prune locks them.
    return transaction(this.pool, async (db) => {
      const { rows: locked } = await db.query<{ thread_id: string }>(
        `SELECT thread_id FROM threads WHERE thread_id = ANY($1::text[]) ORDER BY thread_id COLLATE "C" FOR UPDATE`,
        [[...new Set(threadIds)]],
      );
      // Under the threads' locks, no run is created or claimed on them until this commits. Which of them run is
      // read by a new statement (a new snapshot): a run claimed while this waited for a lock is seen, and its thread left alone.
      const { rows } = await db.query<{ thread_id: string }>(
        `SELECT x.thread_id FROM unnest($1::text[]) WITH ORDINALITY AS x(thread_id, n)
          WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = x.thread_id AND r.status = 'running')
          ORDER BY x.n`,
        [locked.map((row) => row.thread_id)],
      );
      const ids = rows.map((row) => row.thread_id);
      const pending =
        strategy === "delete" && ids.length > 0
          ? (await db.query<{ run_id: string }>("SELECT run_id FROM runs WHERE thread_id = ANY($1::text[]) AND status = 'pending'", [ids])).rows.map((row) => row.run_id)
          : [];
      await pruneThreadRows(db, ids, strategy);
      return { pruned: ids.length, pending_runs: pending };
    });
  }

  async sweepExpired(nowMs: number | undefined, limit: number): Promise<TtlSweep> {
    return sweepExpiredThreads(this.pool, nowMs, limit);
  }

  async copy(threadId: string, newThreadId: string): Promise<Thread> {
    return transaction(this.pool, async (db) => {
      const row = await this.#row(db, threadId, true);
      if (row === undefined) throw notFound("Thread", threadId);
      const iso = isoFromMs(this.clock.nowMs());
      const status: ThreadStatus = row.status === "busy" ? "idle" : row.status;
      await db.query(
        `INSERT INTO threads (thread_id, created_at, updated_at, metadata, status, "values", interrupts, config, error, ttl_strategy, ttl_minutes)
         SELECT $2, $3, $3, metadata, $4, "values", interrupts, config, error, ttl_strategy, ttl_minutes FROM threads WHERE thread_id = $1`,
        [threadId, newThreadId, iso, status],
      );
      await db.query(
        `INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, metadata)
         SELECT $2, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, metadata FROM checkpoints WHERE thread_id = $1`,
        [threadId, newThreadId],
      );
      await db.query(
        `INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value)
         SELECT $2, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value FROM checkpoint_writes WHERE thread_id = $1`,
        [threadId, newThreadId],
      );
      return toThread((await this.#row(db, newThreadId))!);
    });
  }

  async setState(
    threadId: string,
    state: { values: JsonObject | null; interrupts: Record<string, unknown[]>; status: ThreadStatus; graphId?: string },
  ): Promise<void> {
    const { rowCount } = await this.pool.query(
      `UPDATE threads SET "values" = $2::jsonb, interrupts = $3::jsonb,
              -- A busy thread stays busy: its run settles the status when it ends.
              status = CASE WHEN status = 'busy' THEN 'busy' ELSE $4 END,
              metadata = CASE WHEN $5::text IS NULL THEN metadata ELSE metadata || jsonb_build_object('graph_id', $5::text) END,
              updated_at = $6
        WHERE thread_id = $1`,
      [threadId, jsonb(state.values), jsonb(state.interrupts), state.status, state.graphId ?? null, isoFromMs(this.clock.nowMs())],
    );
    if (rowCount === 0) throw notFound("Thread", threadId);
  }
}

export class PostgresStoreItems implements StoreItems {
  /** The search start-up chose (store-vectors.ts); the exact scan until then. */
  #vectors: VectorSearchChoice | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly clock: Clock,
  ) {}

  async prepareVectorSearch(dims: number, mode: VectorSearchMode, logger: Logger): Promise<VectorSearchChoice> {
    this.#vectors = await retryUnavailable(() => prepareVectorSearch(this.pool, dims, mode, logger));
    return this.#vectors;
  }

  async put(namespace: string[], key: string, value: JsonObject, options: StorePutOptions = {}): Promise<void> {
    const nowMs = this.clock.nowMs();
    const ttl = options.ttlMinutes ?? null;
    const encoded = encodeNamespace(namespace);
    const vectors = options.vectors ?? [];
    // Every store call is retried across a lost connection: put is an upsert and delete idempotent,
    // so a graph's store write survives a Postgres restart as its checkpoints do.
    await retryUnavailable(() =>
      transaction(this.pool, async (client) => {
        // An item that had expired (not swept yet) is replaced as a new one.
        await client.query(
          `INSERT INTO store_items (namespace, key, value, created_at, updated_at, ttl_minutes, expires_at_ms) VALUES ($1, $2, $3::jsonb, $4, $4, $5, $6)
           ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at,
             created_at = CASE WHEN store_items.expires_at_ms IS NOT NULL AND store_items.expires_at_ms <= $7 THEN excluded.created_at ELSE store_items.created_at END,
             ttl_minutes = excluded.ttl_minutes, expires_at_ms = excluded.expires_at_ms`,
          [encoded, key, jsonb(value), isoFromMs(nowMs), ttl, expiresAt(nowMs, ttl), nowMs],
        );
        await client.query("DELETE FROM store_vectors WHERE namespace = $1 AND key = $2", [encoded, key]);
        if (vectors.length > 0 && this.#vectors?.fillColumn === true) {
          await client.query(
            `INSERT INTO store_vectors (namespace, key, field, embedding, embedding_v)
             SELECT $1, $2, field, embedding, vec::vector FROM unnest($3::text[], $4::bytea[], $5::text[]) AS v (field, embedding, vec)`,
            [encoded, key, vectors.map((v) => v.field), vectors.map((v) => encodeVector(v.vector)), vectors.map((v) => (indexable(v.vector, v.vector.length) ? vectorText(v.vector) : null))],
          );
        } else if (vectors.length > 0) {
          await client.query(
            "INSERT INTO store_vectors (namespace, key, field, embedding) SELECT $1, $2, field, embedding FROM unnest($3::text[], $4::bytea[]) AS v (field, embedding)",
            [encoded, key, vectors.map((v) => v.field), vectors.map((v) => encodeVector(v.vector))],
          );
        }
      }),
    );
  }

  async get(namespace: string[], key: string, scope?: StoreRead): Promise<StoreItem | null> {
    const nowMs = this.clock.nowMs();
    const args: unknown[] = [encodeNamespace(namespace), key, nowMs];
    const clauses = ["namespace = $1 AND key = $2", LIVE(3), ...compileFilter("postgres", ITEM, { access: scope?.access }, args)];
    const { rows } = await retryUnavailable(() => this.pool.query<ItemRow>(`SELECT * FROM store_items${where(clauses)}`, args));
    if (rows[0] === undefined) return null;
    if (scope?.refreshTtl === true) await this.#refresh(rows, nowMs);
    return toItem(rows[0]);
  }

  async delete(namespace: string[], key: string, scope?: Scoped): Promise<void> {
    const args: unknown[] = [encodeNamespace(namespace), key];
    const clauses = ["namespace = $1 AND key = $2", ...compileFilter("postgres", ITEM, { access: scope?.access }, args)];
    await retryUnavailable(() => this.pool.query(`DELETE FROM store_items${where(clauses)}`, args));
  }

  async search(query: StoreSearch): Promise<ScoredStoreItem[]> {
    const nowMs = this.clock.nowMs();
    const prefix = encodeNamespace(query.namespace_prefix);
    // The namespaces under the prefix as a range (an encoded prefix ends with U+001F: below it comes U+0020), which
    // the planner can estimate from its statistics; with pgvector, that estimate is what chooses the index when most items match.
    const args: unknown[] = [nowMs];
    const clauses = [LIVE(1)];
    if (prefix !== "") {
      args.push(prefix, `${prefix.slice(0, -1)}\u0020`);
      clauses.push('namespace COLLATE "C" >= $2', 'namespace COLLATE "C" < $3');
    }
    clauses.push(...compileFilter("postgres", ITEM, { contains: query.filter, access: query.access }, args));
    const order = `ORDER BY updated_at DESC, namespace COLLATE "C", key COLLATE "C"`;
    let found: { rows: ItemRow[]; items: ScoredStoreItem[] };
    if (query.vector !== undefined) {
      const vector = query.vector;
      const maxCandidates = query.maxCandidates ?? DEFAULT_SEARCH_MAX_CANDIDATES;
      const rank = this.#vectors?.search === "pgvector" ? this.#rankByIndex.bind(this) : this.#rank.bind(this);
      found = await retryUnavailable(() => transaction(this.pool, (client) => rank(client, vector, clauses, args, query.offset, query.limit, maxCandidates)));
    } else {
      if (query.query !== undefined && query.query !== "") {
        // No index configured: a plain case-insensitive text match on the value.
        args.push(query.query);
        // Case folds ASCII letters only (the C collation), as SQLite's lower() does.
        clauses.push(`strpos(lower(value::text COLLATE "C"), lower($${args.length}::text COLLATE "C")) > 0`);
      }
      args.push(query.limit, query.offset);
      const sql = `SELECT * FROM store_items${where(clauses)} ${order} LIMIT $${args.length - 1} OFFSET $${args.length}`;
      const rows = (await retryUnavailable(() => this.pool.query<ItemRow>(sql, args))).rows;
      found = { rows, items: rows.map(toItem) };
    }
    if (query.refreshTtl === true) await this.#refresh(found.rows, nowMs);
    return found.items;
  }

  async listNamespaces(query: NamespaceQuery): Promise<string[][]> {
    const sql = `SELECT DISTINCT namespace COLLATE "C" AS namespace FROM store_items WHERE ${LIVE(1)} ORDER BY 1`;
    const rows = (await retryUnavailable(() => this.pool.query<{ namespace: string }>(sql, [this.clock.nowMs()]))).rows;
    return filterNamespaces(rows.map((row) => row.namespace), query);
  }

  async sweepExpired(limit: number): Promise<number> {
    // SKIP LOCKED: sweepers in several processes take different rows instead of waiting on each other.
    const sql = `DELETE FROM store_items WHERE ctid IN (SELECT ctid FROM store_items WHERE expires_at_ms <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`;
    const result = await retryUnavailable(() => this.pool.query(sql, [this.clock.nowMs(), limit]));
    return result.rowCount ?? 0;
  }

  async vectorExtension(): Promise<PgvectorStatus> {
    return retryUnavailable(() => pgvectorStatus(this.pool));
  }

  async vectorDims(): Promise<number | null> {
    const { rows } = await retryUnavailable(() => this.pool.query<{ bytes: number }>("SELECT octet_length(embedding) AS bytes FROM store_vectors LIMIT 1"));
    return rows[0] === undefined ? null : rows[0].bytes / 4;
  }

  /**
   * The exact scan (docs/store.md): one statement (a cursor, fetched in
   * batches) reads the embeddings of the items the conditions (on
   * store_items, with their arguments) select, in the listing order, and
   * ranks them as they come, keeping the best offset + limit; values are
   * read for the page only. One repeatable-read transaction: the page's
   * values are those of the snapshot that was ranked.
   */
  async #rank(client: pg.PoolClient, vector: number[], clauses: string[], args: unknown[], offset: number, limit: number, maxCandidates: number): Promise<{ rows: ItemRow[]; items: ScoredStoreItem[] }> {
    await client.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    const ranked = await this.#scan(client, vector, clauses, args, offset + limit, maxCandidates, "TRUE");
    return this.#readPage(client, ranked.slice(offset, offset + limit));
  }

  /**
   * pgvector's HNSW index (store-vectors.ts), in the same repeatable-read
   * transaction: the nearest items it finds, merged with the exact scan of
   * the rows that have no `embedding_v` (zero vectors, and rows a process
   * wrote without the column). The candidate bound applies to those rows
   * only: the index reads about as many rows as the page needs.
   */
  async #rankByIndex(client: pg.PoolClient, vector: number[], clauses: string[], args: unknown[], offset: number, limit: number, maxCandidates: number): Promise<{ rows: ItemRow[]; items: ScoredStoreItem[] }> {
    // A query of zeros is as near to everything (cosine 0): the index has no order to give.
    if (!indexable(vector, vector.length)) return this.#rank(client, vector, clauses, args, offset, limit, maxCandidates);
    await client.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    const keep = offset + limit;
    const near = await nearestItems(client, `SELECT namespace, key, updated_at FROM store_items${where(clauses)}`, args, vector, keep);
    const unfilled = (await hasUnfilledRows(client)) ? await this.#scan(client, vector, clauses, args, keep, maxCandidates, "v.embedding_v IS NULL") : [];
    return this.#readPage(client, mergeRankings(near, unfilled).slice(offset, offset + limit));
  }

  /** The best `keep` items of the exact scan, over the embeddings `vectorCondition` (on `v`) selects. */
  async #scan(client: pg.PoolClient, vector: number[], clauses: string[], args: unknown[], keep: number, maxCandidates: number, vectorCondition: string): Promise<RankedKey[]> {
    await client.query(
      `DECLARE store_scan NO SCROLL CURSOR FOR
       SELECT i.namespace, i.key, i.updated_at, v.embedding FROM (SELECT namespace, key, updated_at FROM store_items${where(clauses)}) AS i
       JOIN store_vectors v ON v.namespace = i.namespace AND v.key = i.key WHERE ${vectorCondition}
       ORDER BY i.updated_at DESC, i.namespace COLLATE "C", i.key COLLATE "C"`,
      args,
    );
    const ranking = new SimilarityRanking(vector, keep, maxCandidates);
    for (;;) {
      const { rows } = await client.query<EmbeddingRow>(`FETCH ${SCAN_BATCH} FROM store_scan`);
      for (const row of rows) ranking.add(row);
      if (rows.length < SCAN_BATCH) break;
    }
    await client.query("CLOSE store_scan");
    return ranking.page(0, keep);
  }

  /** The page's items, read from the transaction's snapshot, in the ranking's order with their scores. */
  async #readPage(client: pg.PoolClient, page: RankedKey[]): Promise<{ rows: ItemRow[]; items: ScoredStoreItem[] }> {
    if (page.length === 0) return { rows: [], items: [] };
    const { rows } = await client.query<ItemRow>(`SELECT * FROM store_items WHERE (namespace, key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, [
      page.map((entry) => entry.namespace),
      page.map((entry) => entry.key),
    ]);
    const ranked = pageInOrder(page, rows);
    return { rows: ranked.map(({ row }) => row), items: ranked.map(({ row, score }) => ({ ...toItem(row), score })) };
  }

  /** Pushes the expiry of the rows that have a TTL forward from now. */
  async #refresh(rows: (ItemRow & { ttl_minutes?: number | null })[], nowMs: number): Promise<void> {
    const withTtl = rows.filter((row) => row.ttl_minutes !== null && row.ttl_minutes !== undefined);
    if (withTtl.length === 0) return;
    await retryUnavailable(() =>
      this.pool.query(
        `UPDATE store_items SET expires_at_ms = $1 + round(ttl_minutes * 60000)::bigint
         WHERE (namespace, key) IN (SELECT * FROM unnest($2::text[], $3::text[])) AND ttl_minutes IS NOT NULL AND ${LIVE(1)}`,
        [nowMs, withTtl.map((row) => row.namespace), withTtl.map((row) => row.key)],
      ),
    );
  }
}
