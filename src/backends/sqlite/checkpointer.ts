/**
 * The checkpoint tables on the backend's own SQLite connection, for the
 * shared saver (`../checkpoint-rows.ts`). Statements are prepared once.
 */
import type { SerializerProtocol } from "@langchain/langgraph-checkpoint";
import type { Database, Statement } from "better-sqlite3";
import { refuseUnstorableCheckpoint, refuseUnstorableWrites } from "../../core/serialize.ts";
import { checkpointListSql, RowCheckpointer, type CheckpointRow, type CheckpointTables, type WriteRow } from "../checkpoint-rows.ts";

const COLUMNS = "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata";
const WRITE_COLUMNS = "(thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value)";

function sqliteTables(db: Database): CheckpointTables {
  const latest: Statement<[string, string], CheckpointRow> = db.prepare(
    `SELECT ${COLUMNS} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? ORDER BY checkpoint_id DESC LIMIT 1`,
  );
  const exact: Statement<[string, string, string], CheckpointRow> = db.prepare(
    `SELECT ${COLUMNS} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?`,
  );
  const writes: Statement<[string, string, string], WriteRow> = db.prepare(
    `SELECT task_id, channel, type, value FROM checkpoint_writes
      WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ? ORDER BY task_path, task_id, idx`,
  );
  const insert = db.prepare(
    `INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, metadata)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertWrite = db.prepare(`INSERT OR IGNORE INTO checkpoint_writes ${WRITE_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const upsertWrite = db.prepare(`INSERT OR REPLACE INTO checkpoint_writes ${WRITE_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  return {
    async get(threadId, ns, checkpointId) {
      return checkpointId === undefined ? latest.get(threadId, ns) : exact.get(threadId, ns, checkpointId);
    },
    async writes(key) {
      return writes.all(key.thread_id, key.checkpoint_ns, key.checkpoint_id);
    },
    async list(query) {
      const { sql, args } = checkpointListSql(query, () => "?");
      // Rows are read eagerly: the statement must not stay open across awaits.
      return db.prepare<unknown[], CheckpointRow>(sql).all(...args);
    },
    async put(row) {
      // What Postgres could not keep in a thread's or run's record is refused here too (core/serialize.ts).
      refuseUnstorableCheckpoint(row);
      insert.run(row.thread_id, row.checkpoint_ns, row.checkpoint_id, row.parent_checkpoint_id, row.run_id, row.type, row.checkpoint, row.metadata);
    },
    async putWrites(key, taskPath, rows) {
      refuseUnstorableWrites(rows);
      db.transaction(() => {
        for (const w of rows) {
          (w.replace ? upsertWrite : insertWrite).run(key.thread_id, key.checkpoint_ns, key.checkpoint_id, w.task_id, taskPath, w.idx, w.channel, w.type, w.value);
        }
      }).immediate();
    },
    async deleteThread(threadId) {
      db.transaction(() => {
        db.prepare("DELETE FROM checkpoint_writes WHERE thread_id = ?").run(threadId);
        db.prepare("DELETE FROM checkpoints WHERE thread_id = ?").run(threadId);
      }).immediate();
    },
  };
}

export class SqliteCheckpointer extends RowCheckpointer {
  constructor(db: Database, serde?: SerializerProtocol) {
    super(sqliteTables(db), serde);
  }
}
