/**
 * LangGraph checkpoint saver on the backend's own SQLite connection.
 *
 * Why ours and not `@langchain/langgraph-checkpoint-sqlite`: it shares the
 * connection (and so the transactions) of the runs table, which lets a
 * rollback delete a run and the checkpoints it wrote in one transaction; it
 * records the writing run's id on every checkpoint; it keeps task paths, so
 * pending writes come back in the order LangGraph's own savers use; and it
 * prepares each statement once instead of on every call.
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
import type { Database, Statement } from "better-sqlite3";

interface CheckpointRow {
  thread_id: string;
  checkpoint_ns: string;
  checkpoint_id: string;
  parent_checkpoint_id: string | null;
  type: string;
  checkpoint: Buffer;
  metadata: Buffer;
}

interface WriteRow {
  task_id: string;
  channel: string;
  type: string;
  value: Buffer;
}

/** The run that wrote a checkpoint: from the run's config metadata. */
function runIdOf(config: RunnableConfig): string | null {
  const fromMetadata = config.metadata?.run_id;
  return typeof fromMetadata === "string" ? fromMetadata : null;
}

export class SqliteCheckpointer extends BaseCheckpointSaver {
  readonly #db: Database;
  readonly #latest: Statement<[string, string], CheckpointRow>;
  readonly #exact: Statement<[string, string, string], CheckpointRow>;
  readonly #writes: Statement<[string, string, string], WriteRow>;
  readonly #insert: Statement<unknown[]>;
  readonly #insertWrite: Statement<unknown[]>;
  readonly #upsertWrite: Statement<unknown[]>;

  constructor(db: Database, serde?: SerializerProtocol) {
    super(serde);
    this.#db = db;
    const columns = "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata";
    this.#latest = db.prepare(
      `SELECT ${columns} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? ORDER BY checkpoint_id DESC LIMIT 1`,
    );
    this.#exact = db.prepare(
      `SELECT ${columns} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?`,
    );
    this.#writes = db.prepare(
      `SELECT task_id, channel, type, value FROM checkpoint_writes
        WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ? ORDER BY task_path, task_id, idx`,
    );
    this.#insert = db.prepare(
      `INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, metadata)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const writeColumns = "(thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value)";
    this.#insertWrite = db.prepare(`INSERT OR IGNORE INTO checkpoint_writes ${writeColumns} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.#upsertWrite = db.prepare(`INSERT OR REPLACE INTO checkpoint_writes ${writeColumns} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  }

  async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const threadId = config.configurable?.thread_id as string | undefined;
    if (threadId === undefined) return undefined;
    const ns = (config.configurable?.checkpoint_ns as string | undefined) ?? "";
    const checkpointId = getCheckpointId(config);
    const row = checkpointId ? this.#exact.get(threadId, ns, checkpointId) : this.#latest.get(threadId, ns);
    return row === undefined ? undefined : this.#toTuple(row);
  }

  async *list(config: RunnableConfig, options?: CheckpointListOptions): AsyncGenerator<CheckpointTuple> {
    const where: string[] = [];
    const args: unknown[] = [];
    const threadId = config.configurable?.thread_id as string | undefined;
    if (threadId !== undefined) {
      where.push("thread_id = ?");
      args.push(threadId);
    }
    const ns = config.configurable?.checkpoint_ns as string | undefined;
    if (ns !== undefined) {
      where.push("checkpoint_ns = ?");
      args.push(ns);
    }
    const checkpointId = getCheckpointId(config);
    if (checkpointId) {
      where.push("checkpoint_id = ?");
      args.push(checkpointId);
    }
    const before = options?.before?.configurable?.checkpoint_id as string | undefined;
    if (before) {
      where.push("checkpoint_id < ?");
      args.push(before);
    }
    const filter = Object.entries(options?.filter ?? {});
    const sql =
      "SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata FROM checkpoints" +
      (where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "") +
      " ORDER BY checkpoint_id DESC";
    let remaining = options?.limit ?? Number.POSITIVE_INFINITY;
    // Rows are read eagerly: the statement must not stay open across awaits,
    // other work shares this connection.
    const rows = this.#db.prepare<unknown[], CheckpointRow>(sql).all(...args);
    for (const row of rows) {
      if (remaining <= 0) return;
      const tuple = await this.#toTuple(row);
      if (filter.length > 0) {
        const metadata = (tuple.metadata ?? {}) as Record<string, unknown>;
        if (!filter.every(([key, value]) => deepEqual(metadata[key], value))) continue;
      }
      remaining -= 1;
      yield tuple;
    }
  }

  async put(config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata): Promise<RunnableConfig> {
    const threadId = config.configurable?.thread_id as string | undefined;
    if (!threadId) throw new Error('Cannot save a checkpoint without "thread_id" in config.configurable.');
    const ns = (config.configurable?.checkpoint_ns as string | undefined) ?? "";
    const parentId = (config.configurable?.checkpoint_id as string | undefined) ?? null;
    // Like the official server, checkpoints carry the run's metadata (run_id,
    // graph_id, assistant_id, the user's own), minus LangGraph's bookkeeping.
    const merged: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(config.metadata ?? {})) {
      if (!EXCLUDED_METADATA_KEYS.has(key) && !key.startsWith("__")) merged[key] = value;
    }
    Object.assign(merged, metadata);
    const [type, serializedCheckpoint] = await this.serde.dumpsTyped(copyCheckpoint(checkpoint));
    const [, serializedMetadata] = await this.serde.dumpsTyped(merged);
    this.#insert.run(threadId, ns, checkpoint.id, parentId, runIdOf(config), type, serializedCheckpoint, serializedMetadata);
    return { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: checkpoint.id } };
  }

  async putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string, taskPath?: string): Promise<void> {
    const threadId = config.configurable?.thread_id as string | undefined;
    const checkpointId = config.configurable?.checkpoint_id as string | undefined;
    if (!threadId || !checkpointId) throw new Error('Cannot save writes without "thread_id" and "checkpoint_id" in config.configurable.');
    const ns = (config.configurable?.checkpoint_ns as string | undefined) ?? "";
    const serialized = await Promise.all(writes.map(async ([channel, value]) => [channel, await this.serde.dumpsTyped(value)] as const));
    const save = this.#db.transaction(() => {
      serialized.forEach(([channel, [type, value]], index) => {
        const special = WRITES_IDX_MAP[channel];
        const idx = special ?? index;
        // Special channels (errors, interrupts, resumes) are replaced; ordinary
        // writes are kept as first written, as LangGraph's savers do.
        (special !== undefined ? this.#upsertWrite : this.#insertWrite).run(
          threadId, ns, checkpointId, taskId, taskPath ?? "", idx, channel, type, value,
        );
      });
    });
    save();
  }

  async deleteThread(threadId: string): Promise<void> {
    this.#db.transaction(() => {
      this.#db.prepare("DELETE FROM checkpoint_writes WHERE thread_id = ?").run(threadId);
      this.#db.prepare("DELETE FROM checkpoints WHERE thread_id = ?").run(threadId);
    })();
  }

  async #toTuple(row: CheckpointRow): Promise<CheckpointTuple> {
    const writes = this.#writes.all(row.thread_id, row.checkpoint_ns, row.checkpoint_id);
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

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
