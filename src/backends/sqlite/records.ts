/** Assistants, threads and store items on SQLite. */
import { setImmediate } from "node:timers/promises";
import BetterSqlite, { type Database } from "better-sqlite3";
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
import { DEFAULT_SEARCH_MAX_CANDIDATES } from "../../core/store-index.ts";
import type { Filter } from "../../core/filter.ts";
import { compileFilter } from "../filter-sql.ts";
import type { ThreadTtl, TtlSweep } from "../../core/thread-ttl.ts";
import { pruneThreadRows, setTtl, sweepExpiredThreads } from "./thread-prune.ts";
import { filterNamespaces, type NamespaceQuery } from "../namespaces.ts";
import { encodeVector, expiresAt, pageInOrder, SCAN_BATCH, SimilarityRanking, type EmbeddingRow } from "../vectors.ts";
import type { Assistant, IfExists, JsonObject, Metadata, StoreItem, Thread, ThreadStatus } from "../../core/types.ts";
import {
  deleteThreadRows,
  encodeNamespace,
  inList,
  json,
  jsonContains,
  registerFunctions,
  toAssistant,
  toItem,
  toThread,
  type AssistantRow,
  type ItemRow,
  type ThreadRow,
} from "./rows.ts";

/** The access filter's conditions on a JSON column (none when it restricts nothing). */
const access = (column: string, filter: Filter | undefined, args: unknown[]): string[] => compileFilter("sqlite", column, { access: filter }, args);

/** A store item's access document: its value, namespace and key. */
const ITEM = { value: "value", namespace: "namespace", key: "key" } as const;

/** A live store item: no TTL, or one not passed yet (takes the time, epoch ms, as the next argument). */
const LIVE = "(expires_at_ms IS NULL OR expires_at_ms > ?)";
/** The row of `table` has expired (takes the time as the next argument). */
const EXPIRED = (table: string) => `${table}.expires_at_ms IS NOT NULL AND ${table}.expires_at_ms <= ?`;
/** When an item written now with this TTL (minutes) expires. */

const orderBy = (column: string | undefined, allowed: readonly string[], order: "asc" | "desc" | undefined, fallback: string) =>
  `${column !== undefined && allowed.includes(column) ? column : fallback} ${order === "asc" ? "ASC" : "DESC"}`;

export class SqliteAssistants implements Assistants {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
  ) {}

  async create(input: NewAssistant): Promise<Assistant> {
    return this.db.transaction(() => {
      const existing = this.#row(input.assistant_id);
      if (existing !== undefined) {
        if (input.if_exists === "do_nothing") return toAssistant(existing);
        throw conflict(`Assistant '${input.assistant_id}' already exists; use if_exists 'do_nothing' to get it instead.`);
      }
      this.#insert(input);
      return toAssistant(this.#row(input.assistant_id)!);
    }).immediate();
  }

  async ensure(input: Omit<NewAssistant, "if_exists">): Promise<void> {
    this.db.transaction(() => {
      if (this.#row(input.assistant_id) === undefined) this.#insert(input);
    }).immediate();
  }

  #insert(input: Omit<NewAssistant, "if_exists">): void {
    const iso = isoFromMs(this.clock.nowMs());
    const values = [input.graph_id, input.name, input.description, json(input.config), json(input.context), json(input.metadata)];
    this.db
      .prepare(
        `INSERT INTO assistants (assistant_id, graph_id, name, description, config, context, metadata, version, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
      )
      .run(input.assistant_id, ...values, iso, iso);
    this.db
      .prepare(
        `INSERT INTO assistant_versions (assistant_id, version, graph_id, name, description, config, context, metadata, created_at)
         VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(input.assistant_id, ...values, iso);
  }

  /** The assistant, unless missing or outside the access filter. */
  #row(id: string, filter?: Filter): AssistantRow | undefined {
    const args: unknown[] = [id];
    const clauses = ["assistant_id = ?", ...access("metadata", filter, args)];
    return this.db.prepare<unknown[], AssistantRow>(`SELECT * FROM assistants WHERE ${clauses.join(" AND ")}`).get(...args);
  }

  async get(assistantId: string, scope?: Scoped): Promise<Assistant | null> {
    const row = this.#row(assistantId, scope?.access);
    return row === undefined ? null : toAssistant(row);
  }

  async patch(assistantId: string, patch: AssistantPatch, scope?: Scoped): Promise<Assistant> {
    return this.db.transaction(() => {
      const current = this.#row(assistantId, scope?.access);
      if (current === undefined) throw notFound("Assistant", assistantId);
      const latest = (
        this.db.prepare("SELECT MAX(version) AS v FROM assistant_versions WHERE assistant_id = ?").get(assistantId) as { v: number }
      ).v;
      const version = latest + 1;
      const iso = isoFromMs(this.clock.nowMs());
      const next = {
        graph_id: patch.graph_id ?? current.graph_id,
        name: patch.name ?? current.name,
        description: patch.description !== undefined ? patch.description : current.description,
        config: patch.config !== undefined ? json(patch.config) : current.config,
        context: patch.context !== undefined ? json(patch.context) : current.context,
        // Metadata is merged, as the official server does.
        metadata: json({ ...(JSON.parse(current.metadata) as Metadata), ...(patch.metadata ?? {}) }),
      };
      this.db
        .prepare(
          `INSERT INTO assistant_versions (assistant_id, version, graph_id, name, description, config, context, metadata, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(assistantId, version, next.graph_id, next.name, next.description, next.config, next.context, next.metadata, iso);
      this.db
        .prepare(
          `UPDATE assistants SET graph_id = ?, name = ?, description = ?, config = ?, context = ?, metadata = ?, version = ?, updated_at = ?
            WHERE assistant_id = ?`,
        )
        .run(next.graph_id, next.name, next.description, next.config, next.context, next.metadata, version, iso, assistantId);
      return toAssistant(this.#row(assistantId)!);
    }).immediate();
  }

  async delete(assistantId: string, options?: { deleteThreads?: boolean } & Scoped): Promise<boolean> {
    return this.db.transaction(() => {
      if (this.#row(assistantId, options?.access) === undefined) return false;
      if (options?.deleteThreads) {
        // Containment, as every filter: only a string equal to the id names it.
        const args: unknown[] = [];
        const named = compileFilter("sqlite", "metadata", { contains: { assistant_id: assistantId } }, args);
        const threads = this.db.prepare<unknown[], { thread_id: string }>(`SELECT thread_id FROM threads WHERE ${named.join(" AND ")}`).all(...args);
        for (const { thread_id } of threads) {
          const running = this.db.prepare("SELECT run_id FROM runs WHERE thread_id = ? AND status = 'running'").get(thread_id) as
            | { run_id: string }
            | undefined;
          if (running !== undefined) {
            throw conflict(`Thread '${thread_id}' of assistant '${assistantId}' has a running run ('${running.run_id}'); cancel it first. Nothing was deleted.`);
          }
          deleteThreadRows(this.db, thread_id);
        }
      }
      // Its crons go with it, as on the official server (they could never fire again).
      this.db.prepare("DELETE FROM crons WHERE assistant_id = ?").run(assistantId);
      this.db.prepare("DELETE FROM assistants WHERE assistant_id = ?").run(assistantId);
      return true;
    }).immediate();
  }

  #where(query: Omit<AssistantSearch, "limit" | "offset" | "sort_by" | "sort_order">, args: unknown[]): string {
    const clauses: string[] = [];
    if (query.graph_id !== undefined) {
      clauses.push("graph_id = ?");
      args.push(query.graph_id);
    }
    if (query.name !== undefined) {
      clauses.push("instr(lower(name), lower(?)) > 0");
      args.push(query.name);
    }
    clauses.push(...compileFilter("sqlite", "metadata", { contains: query.metadata, access: query.access }, args));
    return clauses.length > 0 ? ` WHERE ${clauses.join(" AND ")}` : "";
  }

  async search(query: AssistantSearch): Promise<Assistant[]> {
    const args: unknown[] = [];
    const where = this.#where(query, args);
    const order = orderBy(query.sort_by, ["assistant_id", "graph_id", "name", "created_at", "updated_at"], query.sort_order, "created_at");
    args.push(query.limit, query.offset);
    return this.db
      .prepare<unknown[], AssistantRow>(`SELECT * FROM assistants${where} ORDER BY ${order}, assistant_id LIMIT ? OFFSET ?`)
      .all(...args)
      .map(toAssistant);
  }

  async count(query: Omit<AssistantSearch, "limit" | "offset" | "sort_by" | "sort_order">): Promise<number> {
    const args: unknown[] = [];
    const where = this.#where(query, args);
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM assistants${where}`).get(...args) as { n: number }).n;
  }

  async versions(assistantId: string, query: Page & Scoped & { metadata?: Metadata | undefined }): Promise<Assistant[]> {
    const args: unknown[] = [assistantId];
    // The access filter reads each version's own metadata, as the official server does.
    const clauses = ["assistant_id = ?", ...compileFilter("sqlite", "metadata", { contains: query.metadata, access: query.access }, args)];
    args.push(query.limit, query.offset);
    const rows = this.db
      .prepare<unknown[], Omit<AssistantRow, "updated_at">>(
        `SELECT * FROM assistant_versions WHERE ${clauses.join(" AND ")} ORDER BY version DESC LIMIT ? OFFSET ?`,
      )
      .all(...args);
    return rows.map((row) => toAssistant({ ...row, updated_at: row.created_at }));
  }

  async setLatest(assistantId: string, version: number, scope?: Scoped): Promise<Assistant> {
    return this.db.transaction(() => {
      if (this.#row(assistantId, scope?.access) === undefined) throw notFound("Assistant", assistantId);
      const row = this.db
        .prepare<[string, number], Omit<AssistantRow, "updated_at">>(
          "SELECT * FROM assistant_versions WHERE assistant_id = ? AND version = ?",
        )
        .get(assistantId, version);
      if (row === undefined) throw notFound("Assistant version", `${assistantId}@${version}`);
      this.db
        .prepare(
          `UPDATE assistants SET graph_id = ?, name = ?, description = ?, config = ?, context = ?, metadata = ?, version = ?, updated_at = ?
            WHERE assistant_id = ?`,
        )
        .run(row.graph_id, row.name, row.description, row.config, row.context, row.metadata, version, isoFromMs(this.clock.nowMs()), assistantId);
      return toAssistant(this.#row(assistantId)!);
    }).immediate();
  }
}

export class SqliteThreads implements Threads {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
  ) {}

  /** The thread, unless missing or outside the access filter. */
  #row(id: string, filter?: Filter): ThreadRow | undefined {
    const args: unknown[] = [id];
    const clauses = ["thread_id = ?", ...access("metadata", filter, args)];
    return this.db.prepare<unknown[], ThreadRow>(`SELECT * FROM threads WHERE ${clauses.join(" AND ")}`).get(...args);
  }

  async create(input: { thread_id: string; metadata: Metadata; if_exists: IfExists; ttl?: ThreadTtl | null | undefined }): Promise<Thread> {
    return this.db.transaction(() => {
      const existing = this.#row(input.thread_id);
      if (existing !== undefined) {
        if (input.if_exists === "do_nothing") return toThread(existing);
        throw conflict(`Thread '${input.thread_id}' already exists; use if_exists 'do_nothing' to get it instead.`);
      }
      const iso = isoFromMs(this.clock.nowMs());
      this.db
        .prepare(
          `INSERT INTO threads (thread_id, created_at, updated_at, metadata, status, "values", interrupts, config, ttl_strategy, ttl_minutes)
           VALUES (?, ?, ?, ?, 'idle', NULL, '{}', '{}', ?, ?)`,
        )
        .run(input.thread_id, iso, iso, json(input.metadata), input.ttl?.strategy ?? null, input.ttl?.minutes ?? null);
      return toThread(this.#row(input.thread_id)!);
    }).immediate();
  }

  async get(threadId: string, scope?: Scoped): Promise<Thread | null> {
    const row = this.#row(threadId, scope?.access);
    return row === undefined ? null : toThread(row);
  }

  async patch(threadId: string, metadata: Metadata, scope?: Scoped, ttl?: ThreadTtl): Promise<Thread> {
    return this.db.transaction(() => {
      const row = this.#row(threadId, scope?.access);
      if (row === undefined) throw notFound("Thread", threadId);
      const merged = { ...(JSON.parse(row.metadata) as Metadata), ...metadata };
      if (ttl !== undefined) setTtl(this.db, threadId, ttl);
      // After the TTL: the new updated_at counts its expiry from now.
      this.db
        .prepare("UPDATE threads SET metadata = ?, updated_at = ? WHERE thread_id = ?")
        .run(json(merged), isoFromMs(this.clock.nowMs()), threadId);
      return toThread(this.#row(threadId)!);
    }).immediate();
  }

  async delete(threadId: string, scope?: Scoped): Promise<boolean> {
    return this.db.transaction(() => {
      if (this.#row(threadId, scope?.access) === undefined) return false;
      const running = this.db.prepare("SELECT run_id FROM runs WHERE thread_id = ? AND status = 'running'").get(threadId) as
        | { run_id: string }
        | undefined;
      if (running !== undefined) {
        throw new BatonError(
          ErrorCode.conflict,
          `Thread '${threadId}' has a running run ('${running.run_id}'); cancel it first, then delete the thread.`,
        );
      }
      deleteThreadRows(this.db, threadId);
      return true;
    }).immediate();
  }

  #where(query: Omit<ThreadSearch, "limit" | "offset" | "sort_by" | "sort_order">, args: unknown[]): string {
    const clauses: string[] = [];
    if (query.ids !== undefined && query.ids.length > 0) clauses.push(inList("thread_id", query.ids, args));
    if (query.status !== undefined) {
      clauses.push("status = ?");
      args.push(query.status);
    }
    clauses.push(...compileFilter("sqlite", "metadata", { contains: query.metadata, access: query.access }, args));
    clauses.push(...jsonContains(`"values"`, query.values, args));
    return clauses.length > 0 ? ` WHERE ${clauses.join(" AND ")}` : "";
  }

  async search(query: ThreadSearch): Promise<Thread[]> {
    const args: unknown[] = [];
    const where = this.#where(query, args);
    const order = orderBy(query.sort_by, ["thread_id", "status", "created_at", "updated_at"], query.sort_order, "created_at");
    args.push(query.limit, query.offset);
    return this.db
      .prepare<unknown[], ThreadRow>(`SELECT * FROM threads${where} ORDER BY ${order}, thread_id LIMIT ? OFFSET ?`)
      .all(...args)
      .map(toThread);
  }

  async count(query: Omit<ThreadSearch, "limit" | "offset" | "sort_by" | "sort_order" | "ids">): Promise<number> {
    const args: unknown[] = [];
    const where = this.#where(query, args);
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM threads${where}`).get(...args) as { n: number }).n;
  }

  async prune(threadIds: string[], strategy: "delete" | "keep_latest"): Promise<{ pruned: number; pending_runs: string[] }> {
    if (threadIds.length === 0) return { pruned: 0, pending_runs: [] };
    return this.db.transaction(() => {
      const args: unknown[] = [];
      const ids = this.db
        .prepare<unknown[], { thread_id: string }>(
          `SELECT t.thread_id FROM threads t WHERE t.${inList("thread_id", [...new Set(threadIds)], args)}
              AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = t.thread_id AND r.status = 'running')`,
        )
        .all(...args)
        .map((row) => row.thread_id);
      const pending: string[] = [];
      if (strategy === "delete" && ids.length > 0) {
        const runArgs: unknown[] = [];
        const rows = this.db.prepare<unknown[], { run_id: string }>(`SELECT run_id FROM runs WHERE ${inList("thread_id", ids, runArgs)} AND status = 'pending'`).all(...runArgs);
        pending.push(...rows.map((row) => row.run_id));
      }
      pruneThreadRows(this.db, ids, strategy);
      return { pruned: ids.length, pending_runs: pending };
    }).immediate();
  }

  async sweepExpired(nowMs: number | undefined, limit: number): Promise<TtlSweep> {
    // One process owns the file: its clock is the only one.
    return this.db.transaction(() => sweepExpiredThreads(this.db, nowMs ?? this.clock.nowMs(), limit)).immediate();
  }

  async copy(threadId: string, newThreadId: string): Promise<Thread> {
    return this.db.transaction(() => {
      const row = this.#row(threadId);
      if (row === undefined) throw notFound("Thread", threadId);
      const iso = isoFromMs(this.clock.nowMs());
      const status: ThreadStatus = row.status === "busy" ? "idle" : row.status;
      this.db
        .prepare(
          `INSERT INTO threads (thread_id, created_at, updated_at, metadata, status, "values", interrupts, config, error, ttl_strategy, ttl_minutes)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(newThreadId, iso, iso, row.metadata, status, row.values, row.interrupts, row.config, row.error, row.ttl_strategy, row.ttl_minutes);
      this.db
        .prepare(
          `INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, metadata)
           SELECT ?, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, metadata FROM checkpoints WHERE thread_id = ?`,
        )
        .run(newThreadId, threadId);
      this.db
        .prepare(
          `INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value)
           SELECT ?, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value FROM checkpoint_writes WHERE thread_id = ?`,
        )
        .run(newThreadId, threadId);
      return toThread(this.#row(newThreadId)!);
    }).immediate();
  }

  async setState(
    threadId: string,
    state: { values: JsonObject | null; interrupts: Record<string, unknown[]>; status: ThreadStatus; graphId?: string },
  ): Promise<void> {
    this.db.transaction(() => {
      const row = this.#row(threadId);
      if (row === undefined) throw notFound("Thread", threadId);
      const metadata = JSON.parse(row.metadata) as Metadata;
      if (state.graphId !== undefined) metadata.graph_id = state.graphId;
      // A busy thread stays busy: its run settles the status when it ends.
      const status = row.status === "busy" ? "busy" : state.status;
      this.db
        .prepare(`UPDATE threads SET "values" = ?, interrupts = ?, status = ?, metadata = ?, updated_at = ? WHERE thread_id = ?`)
        .run(json(state.values), json(state.interrupts), status, json(metadata), isoFromMs(this.clock.nowMs()), threadId);
    }).immediate();
  }
}

/** Read-only connections kept open for the next semantic searches (more are opened while more run at once). */
const IDLE_READERS = 2;

export class SqliteStoreItems implements StoreItems {
  /** Every read-only connection open for scans, and those not in use. */
  readonly #readers = new Set<Database>();
  readonly #idleReaders: Database[] = [];
  #closed = false;

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
  ) {}

  async put(namespace: string[], key: string, value: JsonObject, options: StorePutOptions = {}): Promise<void> {
    const nowMs = this.clock.nowMs();
    const iso = isoFromMs(nowMs);
    const ttl = options.ttlMinutes ?? null;
    const encoded = encodeNamespace(namespace);
    this.db.transaction(() => {
      // An item that had expired (not swept yet) is replaced as a new one.
      this.db
        .prepare(
          `INSERT INTO store_items (namespace, key, value, created_at, updated_at, ttl_minutes, expires_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at,
             created_at = CASE WHEN ${EXPIRED("store_items")} THEN excluded.created_at ELSE store_items.created_at END,
             ttl_minutes = excluded.ttl_minutes, expires_at_ms = excluded.expires_at_ms`,
        )
        .run(encoded, key, json(value), iso, iso, ttl, expiresAt(nowMs, ttl), nowMs);
      this.db.prepare("DELETE FROM store_vectors WHERE namespace = ? AND key = ?").run(encoded, key);
      const insert = this.db.prepare("INSERT INTO store_vectors (namespace, key, field, embedding) VALUES (?, ?, ?, ?)");
      for (const { field, vector } of options.vectors ?? []) insert.run(encoded, key, field, encodeVector(vector));
    }).immediate();
  }

  async get(namespace: string[], key: string, scope?: StoreRead): Promise<StoreItem | null> {
    const nowMs = this.clock.nowMs();
    const args: unknown[] = [encodeNamespace(namespace), key, nowMs];
    const clauses = ["namespace = ? AND key = ?", LIVE, ...compileFilter("sqlite", ITEM, { access: scope?.access }, args)];
    const row = this.db.prepare<unknown[], ItemRow>(`SELECT * FROM store_items WHERE ${clauses.join(" AND ")}`).get(...args);
    if (row === undefined) return null;
    if (scope?.refreshTtl === true) this.#refresh([row], nowMs);
    return toItem(row);
  }

  async delete(namespace: string[], key: string, scope?: Scoped): Promise<void> {
    const args: unknown[] = [encodeNamespace(namespace), key];
    const clauses = ["namespace = ? AND key = ?", ...compileFilter("sqlite", ITEM, { access: scope?.access }, args)];
    this.db.prepare(`DELETE FROM store_items WHERE ${clauses.join(" AND ")}`).run(...args);
  }

  async search(query: StoreSearch): Promise<ScoredStoreItem[]> {
    const nowMs = this.clock.nowMs();
    const args: unknown[] = [];
    const prefix = encodeNamespace(query.namespace_prefix);
    const clauses = ["substr(namespace, 1, ?) = ?", LIVE];
    args.push(prefix.length, prefix, nowMs);
    clauses.push(...compileFilter("sqlite", ITEM, { contains: query.filter, access: query.access }, args));
    const order = "ORDER BY updated_at DESC, namespace, key";
    let found: { rows: ItemRow[]; items: ScoredStoreItem[] };
    if (query.vector !== undefined) {
      found = await this.#rank(query.vector, clauses, args, query.offset, query.limit, query.maxCandidates ?? DEFAULT_SEARCH_MAX_CANDIDATES);
    } else {
      if (query.query !== undefined && query.query !== "") {
        // No index configured: a plain case-insensitive text match on the value.
        clauses.push("instr(lower(value), lower(?)) > 0");
        args.push(query.query);
      }
      args.push(query.limit, query.offset);
      const rows = this.db.prepare<unknown[], ItemRow>(`SELECT * FROM store_items WHERE ${clauses.join(" AND ")} ${order} LIMIT ? OFFSET ?`).all(...args);
      found = { rows, items: rows.map(toItem) };
    }
    if (query.refreshTtl === true) this.#refresh(found.rows, nowMs);
    return found.items;
  }

  async listNamespaces(query: NamespaceQuery): Promise<string[][]> {
    const rows = this.db.prepare<[number], { namespace: string }>(`SELECT DISTINCT namespace FROM store_items WHERE ${LIVE} ORDER BY namespace`).all(this.clock.nowMs());
    return filterNamespaces(rows.map((row) => row.namespace), query);
  }

  async sweepExpired(limit: number): Promise<number> {
    return this.db
      .prepare("DELETE FROM store_items WHERE rowid IN (SELECT rowid FROM store_items WHERE expires_at_ms <= ? LIMIT ?)")
      .run(this.clock.nowMs(), limit).changes;
  }

  async vectorDims(): Promise<number | null> {
    const row = this.db.prepare<[], { bytes: number }>("SELECT length(embedding) AS bytes FROM store_vectors LIMIT 1").get();
    return row === undefined ? null : row.bytes / 4;
  }

  /**
   * The exact scan (docs/store.md): one statement reads the embeddings of
   * the items the conditions (on store_items, with their arguments) select,
   * in the listing order, and ranks them as they come, keeping the best
   * offset + limit; values are read for the page only, in the same
   * snapshot. A file database is read through a read-only connection of
   * its own in one read transaction, so the scan yields to the event loop
   * between batches while the main connection serves others (WAL keeps the
   * reader's snapshot); an in-memory one is read at once.
   */
  async #rank(vector: number[], clauses: string[], args: unknown[], offset: number, limit: number, maxCandidates: number): Promise<{ rows: ItemRow[]; items: ScoredStoreItem[] }> {
    const reader = this.#takeReader();
    try {
      return await this.#rankOn(reader, vector, clauses, args, offset, limit, maxCandidates);
    } finally {
      if (reader !== undefined) this.#giveBack(reader);
    }
  }

  async #rankOn(
    reader: Database | undefined,
    vector: number[],
    clauses: string[],
    args: unknown[],
    offset: number,
    limit: number,
    maxCandidates: number,
  ): Promise<{ rows: ItemRow[]; items: ScoredStoreItem[] }> {
    const db = reader ?? this.db;
    const ranking = new SimilarityRanking(vector, offset + limit, maxCandidates);
    const scan = db.prepare<unknown[], EmbeddingRow>(
      `SELECT i.namespace, i.key, i.updated_at, v.embedding FROM (SELECT namespace, key, updated_at FROM store_items WHERE ${clauses.join(" AND ")}) AS i
       JOIN store_vectors v ON v.namespace = i.namespace AND v.key = i.key ORDER BY i.updated_at DESC, i.namespace, i.key`,
    );
    if (reader !== undefined) reader.exec("BEGIN");
    try {
      let read = 0;
      for (const row of scan.iterate(...args)) {
        ranking.add(row);
        if (reader !== undefined && ++read % SCAN_BATCH === 0) await setImmediate();
      }
      const page = ranking.page(offset, limit);
      if (page.length === 0) return { rows: [], items: [] };
      const rows = db
        .prepare<unknown[], ItemRow>(`SELECT * FROM store_items WHERE ${page.map(() => "(namespace = ? AND key = ?)").join(" OR ")}`)
        .all(...page.flatMap(({ namespace, key }) => [namespace, key]));
      const ranked = pageInOrder(page, rows);
      return { rows: ranked.map(({ row }) => row), items: ranked.map(({ row, score }) => ({ ...toItem(row), score })) };
    } finally {
      if (reader?.open === true) reader.exec("COMMIT");
    }
  }

  /**
   * A read-only connection to the database file for one scan (none for an
   * in-memory database): an idle one, or a new one. A connection serves one
   * scan at a time (its statement and transaction stay open across the
   * scan's yields), so concurrent searches each take their own.
   */
  #takeReader(): Database | undefined {
    if (this.db.memory) return undefined;
    const idle = this.#idleReaders.pop();
    if (idle !== undefined) return idle;
    const reader = new BetterSqlite(this.db.name, { readonly: true, fileMustExist: true, timeout: 5_000 });
    // The filters' functions, as on the main connection.
    registerFunctions(reader);
    this.#readers.add(reader);
    return reader;
  }

  #giveBack(reader: Database): void {
    if (this.#closed || this.#idleReaders.length >= IDLE_READERS) {
      this.#readers.delete(reader);
      reader.close();
    } else this.#idleReaders.push(reader);
  }

  /** Closes the scans' connections (the backend closes its own). */
  close(): void {
    this.#closed = true;
    for (const reader of this.#readers) if (reader.open) reader.close();
    this.#readers.clear();
    this.#idleReaders.length = 0;
  }

  /** Pushes the expiry of the rows that have a TTL forward from now. */
  #refresh(rows: (ItemRow & { ttl_minutes?: number | null })[], nowMs: number): void {
    const withTtl = rows.filter((row) => row.ttl_minutes !== null && row.ttl_minutes !== undefined);
    if (withTtl.length === 0) return;
    const update = this.db.prepare(`UPDATE store_items SET expires_at_ms = ? + CAST(ROUND(ttl_minutes * 60000) AS INTEGER) WHERE namespace = ? AND key = ? AND ttl_minutes IS NOT NULL AND ${LIVE}`);
    this.db.transaction(() => {
      for (const row of withTtl) update.run(nowMs, row.namespace, row.key, nowMs);
    }).immediate();
  }
}
