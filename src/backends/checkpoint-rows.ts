/**
 * LangGraph checkpoint saver over two plain tables (checkpoints and
 * checkpoint_writes), shared by the SQLite and Postgres backends; each
 * backend supplies the few row operations.
 *
 * Why ours and not the official savers: it lives on the backend's own
 * database, so a rollback deletes a run together with the checkpoints it
 * wrote in one transaction; it records the writing run's id on every
 * checkpoint; and it keeps task paths, so pending writes come back in the
 * order LangGraph's own savers use.
 */
import type { RunnableConfig } from "@langchain/core/runnables";
import {
  BaseCheckpointSaver,
  EXCLUDED_METADATA_KEYS,
  WRITES_IDX_MAP,
  copyCheckpoint,
  getCheckpointId,
  type Checkpoint,
  type CheckpointListOptions,
  type CheckpointMetadata,
  type CheckpointPendingWrite,
  type CheckpointTuple,
  type PendingWrite,
  type SerializerProtocol,
} from "@langchain/langgraph-checkpoint";
import { CheckpointWrites, CONFIGURABLE_METADATA_KEY, FENCE_KEY, WRITES_KEY } from "../core/executor.ts";
import { hasFilter } from "../core/filter.ts";

export interface CheckpointRow {
  thread_id: string;
  checkpoint_ns: string;
  checkpoint_id: string;
  parent_checkpoint_id: string | null;
  type: string;
  checkpoint: Uint8Array;
  metadata: Uint8Array;
}

export interface WriteRow {
  task_id: string;
  channel: string;
  type: string;
  value: Uint8Array;
}

export interface NewWriteRow extends WriteRow {
  idx: number;
  /** Special channels (errors, interrupts, resumes) replace; ordinary writes keep the first. */
  replace: boolean;
}

export interface CheckpointKey {
  thread_id: string;
  checkpoint_ns: string;
  checkpoint_id: string;
}

/** A pending write with the checkpoint it belongs to (writes of several checkpoints are read at once). */
export type KeyedWriteRow = WriteRow & CheckpointKey;

/**
 * Which checkpoints `list` wants, newest first: one page of at most `limit`
 * rows, after the row `after` (the last one of the previous page).
 */
export interface CheckpointQuery {
  thread_id?: string | undefined;
  checkpoint_ns?: string | undefined;
  checkpoint_id?: string | undefined;
  before?: string | undefined;
  /** Containment on the metadata (src/core/filter.ts); non-empty, no undefined values. */
  filter?: Record<string, unknown> | undefined;
  limit: number;
  after?: CheckpointKey | undefined;
}

/** The lease of the run writing (owner and attempt), when a worker executes it. */
export interface WriteFence {
  run_id: string;
  owner: string;
  attempt: number;
}

/** The row operations a backend provides. */
export interface CheckpointTables {
  /** The exact checkpoint, or the latest of the thread and namespace when `checkpoint_id` is undefined. */
  get(threadId: string, ns: string, checkpointId: string | undefined): Promise<CheckpointRow | undefined>;
  /** Pending writes of the given checkpoints, in one statement; each checkpoint's ordered by task path, task id and index. */
  writes(keys: readonly CheckpointKey[]): Promise<KeyedWriteRow[]>;
  /** One page of checkpoints (see `checkpointListSql`). */
  list(query: CheckpointQuery): Promise<CheckpointRow[]>;
  /** Writes the checkpoint; with a fence, only while that lease holds (else throws). */
  put(row: CheckpointRow & { run_id: string | null }, fence?: WriteFence): Promise<void>;
  putWrites(key: CheckpointKey, taskPath: string, rows: NewWriteRow[], fence?: WriteFence): Promise<void>;
  deleteThread(threadId: string): Promise<void>;
}

/** The run that wrote a checkpoint: from the run's config metadata. */
function runIdOf(config: RunnableConfig): string | null {
  const fromMetadata = config.metadata?.run_id;
  return typeof fromMetadata === "string" ? fromMetadata : null;
}

/** The writing run's lease, when its worker put one in the config. */
function fenceOf(config: RunnableConfig): WriteFence | undefined {
  const fence = config.configurable?.[FENCE_KEY] as { owner?: unknown; attempt?: unknown } | undefined;
  const runId = runIdOf(config);
  if (fence === undefined || runId === null || typeof fence.owner !== "string" || typeof fence.attempt !== "number") return undefined;
  return { run_id: runId, owner: fence.owner, attempt: fence.attempt };
}

/** Registers a write with its run's tracker, when a run made it (core/executor.ts). */
function tracked(config: RunnableConfig, write: Promise<void>): Promise<void> {
  const writes = config.configurable?.[WRITES_KEY];
  if (writes instanceof CheckpointWrites) writes.track(write);
  return write;
}

/** Thrown when a write's lease no longer holds: another attempt owns the run. */
export class LeaseLostError extends Error {
  override name = "LeaseLostError";
  constructor(fence: WriteFence) {
    super(`Run ${fence.run_id} attempt ${fence.attempt} lost its lease; checkpoint not written.`);
  }
}

export class RowCheckpointer extends BaseCheckpointSaver {
  readonly #tables: CheckpointTables;

  constructor(tables: CheckpointTables, serde?: SerializerProtocol) {
    super(serde);
    this.#tables = tables;
  }

  async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const threadId = config.configurable?.thread_id as string | undefined;
    if (threadId === undefined) return undefined;
    const ns = (config.configurable?.checkpoint_ns as string | undefined) ?? "";
    const row = await this.#tables.get(threadId, ns, getCheckpointId(config) || undefined);
    return row === undefined ? undefined : this.#toTuple(row);
  }

  async *list(config: RunnableConfig, options?: CheckpointListOptions): AsyncGenerator<CheckpointTuple> {
    // Metadata filters mean what every other filter means: JSON containment
    // (src/core/filter.ts), as the official server's `metadata @> filter`.
    // Keys given as undefined ask for nothing, as JSON would drop them.
    const filter = Object.fromEntries(Object.entries(options?.filter ?? {}).filter(([, value]) => value !== undefined));
    const query = {
      thread_id: config.configurable?.thread_id as string | undefined,
      checkpoint_ns: config.configurable?.checkpoint_ns as string | undefined,
      checkpoint_id: getCheckpointId(config) || undefined,
      before: (options?.before?.configurable?.checkpoint_id as string | undefined) || undefined,
      filter: hasFilter(filter) ? filter : undefined,
    };
    // The filter, `before` and the limit are the database's: a page reads
    // only the checkpoints it returns, and their pending writes in one more
    // statement. Without a limit, pages of PAGE_SIZE, so a long history is
    // never held whole.
    const limit = options?.limit === undefined || Number.isNaN(options.limit) ? Number.POSITIVE_INFINITY : Math.ceil(options.limit);
    let remaining = limit;
    let after: CheckpointKey | undefined;
    while (remaining > 0) {
      const size = Math.min(remaining, PAGE_SIZE);
      const rows = await this.#tables.list({ ...query, limit: size, after });
      const writes = await this.#writesOf(rows);
      // Each tuple decoded when it is asked for, as the caller may stop early.
      for (const row of rows) yield await this.#tupleOf(row, writes.get(keyOf(row)) ?? []);
      if (rows.length < size) return;
      remaining -= rows.length;
      after = rows[rows.length - 1];
    }
  }

  async put(config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata): Promise<RunnableConfig> {
    await tracked(config, this.#put(config, checkpoint, metadata));
    const threadId = config.configurable?.thread_id as string;
    const ns = (config.configurable?.checkpoint_ns as string | undefined) ?? "";
    return { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: checkpoint.id } };
  }

  async #put(config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata): Promise<void> {
    const threadId = config.configurable?.thread_id as string | undefined;
    if (!threadId) throw new Error('Cannot save a checkpoint without "thread_id" in config.configurable.');
    const ns = (config.configurable?.checkpoint_ns as string | undefined) ?? "";
    // Like the official server, checkpoints carry the run's metadata (run_id,
    // graph_id, assistant_id, the user's own) and, for a run, its
    // configurable under it (the user's keys, copied request headers), minus
    // LangGraph's bookkeeping and internal keys: history can be filtered by
    // either. Only runs ask for the configurable: a checkpointer on its own
    // stores metadata as given.
    const merged: Record<string, unknown> = {};
    const configurable = config.configurable?.[CONFIGURABLE_METADATA_KEY] === true ? config.configurable : undefined;
    for (const source of [configurable, config.metadata]) {
      for (const [key, value] of Object.entries(source ?? {})) {
        if (!EXCLUDED_METADATA_KEYS.has(key) && !key.startsWith("__")) merged[key] = value;
      }
    }
    Object.assign(merged, metadata);
    const [type, serializedCheckpoint] = await this.serde.dumpsTyped(copyCheckpoint(checkpoint));
    const [, serializedMetadata] = await this.serde.dumpsTyped(merged);
    await this.#tables.put({
      thread_id: threadId,
      checkpoint_ns: ns,
      checkpoint_id: checkpoint.id,
      parent_checkpoint_id: (config.configurable?.checkpoint_id as string | undefined) ?? null,
      run_id: runIdOf(config),
      type,
      checkpoint: serializedCheckpoint,
      metadata: serializedMetadata,
    }, fenceOf(config));
  }

  async putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string, taskPath?: string): Promise<void> {
    await tracked(config, this.#putWrites(config, writes, taskId, taskPath));
  }

  async #putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string, taskPath?: string): Promise<void> {
    const threadId = config.configurable?.thread_id as string | undefined;
    const checkpointId = config.configurable?.checkpoint_id as string | undefined;
    if (!threadId || !checkpointId) throw new Error('Cannot save writes without "thread_id" and "checkpoint_id" in config.configurable.');
    const ns = (config.configurable?.checkpoint_ns as string | undefined) ?? "";
    const rows = await Promise.all(
      writes.map(async ([channel, value], index): Promise<NewWriteRow> => {
        const [type, serialized] = await this.serde.dumpsTyped(value);
        const special = WRITES_IDX_MAP[channel];
        return { task_id: taskId, channel, type, value: serialized, idx: special ?? index, replace: special !== undefined };
      }),
    );
    await this.#tables.putWrites({ thread_id: threadId, checkpoint_ns: ns, checkpoint_id: checkpointId }, taskPath ?? "", rows, fenceOf(config));
  }

  async deleteThread(threadId: string): Promise<void> {
    await this.#tables.deleteThread(threadId);
  }

  async #toTuple(row: CheckpointRow): Promise<CheckpointTuple> {
    return this.#tupleOf(row, await this.#tables.writes([row]));
  }

  /** The pending writes of a page of checkpoints, read in one statement, by checkpoint. */
  async #writesOf(rows: readonly CheckpointRow[]): Promise<Map<string, KeyedWriteRow[]>> {
    const writesOf = new Map<string, KeyedWriteRow[]>();
    if (rows.length === 0) return writesOf;
    for (const write of await this.#tables.writes(rows)) {
      const key = keyOf(write);
      const list = writesOf.get(key);
      if (list === undefined) writesOf.set(key, [write]);
      else list.push(write);
    }
    return writesOf;
  }

  async #tupleOf(row: CheckpointRow, writes: readonly WriteRow[]): Promise<CheckpointTuple> {
    const pendingWrites: CheckpointPendingWrite[] = await Promise.all(
      writes.map(async (w) => [w.task_id, w.channel, await this.serde.loadsTyped(w.type, w.value)] as CheckpointPendingWrite),
    );
    const tuple: CheckpointTuple = {
      config: { configurable: { thread_id: row.thread_id, checkpoint_ns: row.checkpoint_ns, checkpoint_id: row.checkpoint_id } },
      checkpoint: (await this.serde.loadsTyped(row.type, row.checkpoint)) as Checkpoint,
      metadata: (await this.serde.loadsTyped(row.type, row.metadata)) as CheckpointMetadata,
      pendingWrites,
    };
    if (row.parent_checkpoint_id) {
      tuple.parentConfig = {
        configurable: { thread_id: row.thread_id, checkpoint_ns: row.checkpoint_ns, checkpoint_id: row.parent_checkpoint_id },
      };
    }
    return tuple;
  }
}

/** Rows a page of an unlimited `list` reads at once. */
const PAGE_SIZE = 100;

const keyOf = (key: CheckpointKey): string => JSON.stringify([key.thread_id, key.checkpoint_ns, key.checkpoint_id]);

/**
 * One page of `list` as SQL, with `param(i)` rendering the i-th placeholder
 * (1-based) and `metadataContains` the backend's containment condition on
 * the stored metadata (`jsonContains` of its rows module, given the
 * column expression). Newest first: by checkpoint id, then (when the query
 * does not fix them) thread and namespace, so the page after `after` starts
 * exactly where the last one ended, even where ids repeat across threads.
 */
export function checkpointListSql(
  query: CheckpointQuery,
  param: (i: number) => string,
  metadataContains: (filter: Record<string, unknown>, args: unknown[]) => string[],
): { sql: string; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  const add = (condition: string, value: unknown) => {
    args.push(value);
    where.push(`${condition} ${param(args.length)}`);
  };
  if (query.thread_id !== undefined) add("thread_id =", query.thread_id);
  if (query.checkpoint_ns !== undefined) add("checkpoint_ns =", query.checkpoint_ns);
  if (query.checkpoint_id !== undefined) add("checkpoint_id =", query.checkpoint_id);
  if (query.before !== undefined) add("checkpoint_id <", query.before);
  const order: (keyof CheckpointKey)[] = ["checkpoint_id"];
  if (query.thread_id === undefined) order.push("thread_id");
  if (query.checkpoint_ns === undefined) order.push("checkpoint_ns");
  if (query.after !== undefined) {
    const after = query.after;
    const placeholders = order.map((column) => {
      args.push(after[column]);
      return param(args.length);
    });
    where.push(order.length === 1 ? `checkpoint_id < ${placeholders[0]}` : `(${order.join(", ")}) < (${placeholders.join(", ")})`);
  }
  if (query.filter !== undefined) where.push(...metadataContains(query.filter, args));
  args.push(query.limit);
  const sql =
    "SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata FROM checkpoints" +
    (where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "") +
    ` ORDER BY ${order.map((column) => `${column} DESC`).join(", ")} LIMIT ${param(args.length)}`;
  return { sql, args };
}
