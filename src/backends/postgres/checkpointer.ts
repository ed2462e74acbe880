/**
 * The checkpoint tables on the Postgres pool, for the shared saver
 * (`../checkpoint-rows.ts`). Every call takes a pooled connection for one
 * statement (or one transaction for a batch of writes): no process-wide lock
 * around checkpoint I/O, so a slow write never stalls other runs (C9).
 * Writes made by a worker carry its lease and are refused once another
 * attempt owns the run.
 */
import type { SerializerProtocol } from "@langchain/langgraph-checkpoint";
import type pg from "pg";
import { refuseUnstorableCheckpoint, refuseUnstorableWrites } from "../../core/serialize.ts";
import { checkpointListSql, LeaseLostError, RowCheckpointer, type CheckpointRow, type CheckpointTables, type KeyedWriteRow } from "../checkpoint-rows.ts";
import { retryUnavailable, transaction } from "./database.ts";
import { jsonContains } from "./rows.ts";

/** The writing attempt still holds the run (parameters $9 run id, $10 owner, $11 attempt). */
const FENCED = "EXISTS (SELECT 1 FROM runs WHERE run_id = $9 AND status = 'running' AND lease_owner = $10 AND attempt = $11)";
const COLUMNS = "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata";
const bytes = (data: Uint8Array) => Buffer.from(data.buffer, data.byteOffset, data.byteLength);

function postgresTables(pool: pg.Pool): CheckpointTables {
  const tables: CheckpointTables = {
    async get(threadId, ns, checkpointId) {
      const { rows } =
        checkpointId === undefined
          ? await pool.query<CheckpointRow>(
              `SELECT ${COLUMNS} FROM checkpoints WHERE thread_id = $1 AND checkpoint_ns = $2 ORDER BY checkpoint_id DESC LIMIT 1`,
              [threadId, ns],
            )
          : await pool.query<CheckpointRow>(`SELECT ${COLUMNS} FROM checkpoints WHERE thread_id = $1 AND checkpoint_ns = $2 AND checkpoint_id = $3`, [
              threadId,
              ns,
              checkpointId,
            ]);
      return rows[0];
    },
    async writes(keys) {
      // The checkpoints' keys as three parameters (arrays), whatever their number.
      const { rows } = await pool.query<KeyedWriteRow>(
        `SELECT thread_id, checkpoint_ns, checkpoint_id, task_id, channel, type, value FROM checkpoint_writes
          WHERE (thread_id, checkpoint_ns, checkpoint_id) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))
          ORDER BY thread_id, checkpoint_ns, checkpoint_id, task_path, task_id, idx`,
        [keys.map((key) => key.thread_id), keys.map((key) => key.checkpoint_ns), keys.map((key) => key.checkpoint_id)],
      );
      return rows;
    },
    async list(query) {
      // Metadata is stored as the serializer's JSON text (for type "json",
      // never holding U+0000 or a lone surrogate: core/serialize.ts), read as
      // JSONB for the filter, in the query: the containment the official
      // server's saver applies to its own JSONB metadata.
      const { sql, args } = checkpointListSql(query, (i) => `$${i}`, (filter, args) =>
        jsonContains("(CASE WHEN type = 'json' THEN convert_from(metadata, 'UTF8')::jsonb END)", filter, args),
      );
      return (await pool.query<CheckpointRow>(sql, args)).rows;
    },
    async put(row, fence) {
      // A lone surrogate or U+0000 in the state: the run's own error, the same on SQLite (core/serialize.ts).
      refuseUnstorableCheckpoint(row);
      const values = [row.thread_id, row.checkpoint_ns, row.checkpoint_id, row.parent_checkpoint_id, row.run_id, row.type, bytes(row.checkpoint), bytes(row.metadata)];
      const written = await pool.query(
        `INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, metadata)
         SELECT $1, $2, $3, $4, $5, $6, $7::bytea, $8::bytea ${fence === undefined ? "" : `WHERE ${FENCED}`}
         ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET
           parent_checkpoint_id = excluded.parent_checkpoint_id, run_id = excluded.run_id, type = excluded.type,
           checkpoint = excluded.checkpoint, metadata = excluded.metadata`,
        fence === undefined ? values : [...values, fence.run_id, fence.owner, fence.attempt],
      );
      if (fence !== undefined && written.rowCount === 0) throw new LeaseLostError(fence);
    },
    async putWrites(key, taskPath, rows, fence) {
      if (rows.length === 0) return;
      refuseUnstorableWrites(rows);
      await transaction(pool, async (db) => {
        if (fence !== undefined) {
          // FOR SHARE: a sweep that would take the run from this attempt waits for these writes, or they see it.
          const held = await db.query(`SELECT 1 FROM runs WHERE run_id = $1 AND status = 'running' AND lease_owner = $2 AND attempt = $3 FOR SHARE`, [
            fence.run_id,
            fence.owner,
            fence.attempt,
          ]);
          if (held.rowCount === 0) throw new LeaseLostError(fence);
        }
        for (const w of rows) {
          await db.query(
            `INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO ${
               w.replace ? "UPDATE SET task_path = excluded.task_path, channel = excluded.channel, type = excluded.type, value = excluded.value" : "NOTHING"
             }`,
            [key.thread_id, key.checkpoint_ns, key.checkpoint_id, w.task_id, taskPath, w.idx, w.channel, w.type, bytes(w.value)],
          );
        }
      });
    },
    async deleteThread(threadId) {
      await transaction(pool, async (db) => {
        await db.query("DELETE FROM checkpoint_writes WHERE thread_id = $1", [threadId]);
        await db.query("DELETE FROM checkpoints WHERE thread_id = $1", [threadId]);
      });
    },
  };
  return withRetries(tables);
}

/**
 * Every statement here is a read or an idempotent write (`ON CONFLICT`),
 * fenced by the writer's lease: repeating one after a lost connection is
 * safe. So a run whose connection was cut (pg_terminate_backend, a
 * restart) goes on once the database answers again, instead of failing on
 * the checkpoint it was writing.
 */
function withRetries(tables: CheckpointTables): CheckpointTables {
  const wrapped = {} as Record<string, unknown>;
  for (const [name, method] of Object.entries(tables) as [string, (...args: unknown[]) => Promise<unknown>][]) {
    wrapped[name] = (...args: unknown[]) => retryUnavailable(() => method(...args));
  }
  return wrapped as unknown as CheckpointTables;
}

export class PostgresCheckpointer extends RowCheckpointer {
  constructor(pool: pg.Pool, serde?: SerializerProtocol) {
    super(postgresTables(pool), serde);
  }
}
