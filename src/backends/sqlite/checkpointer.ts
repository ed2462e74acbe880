/**
 * The checkpoint tables on the backend's own SQLite connection, for the
 * shared saver (`../checkpoint-rows.ts`). Statements are prepared once.
 */
import type { SerializerProtocol } from "@langchain/langgraph-checkpoint";
import type { Database, Statement } from "better-sqlite3";
import { refuseUnstorableCheckpoint, refuseUnstorableWrites } from "../../core/serialize.ts";
import { checkpointListSql, RowCheckpointer, type CheckpointRow, type CheckpointTables, type KeyedWriteRow } from "../checkpoint-rows.ts";
import { jsonContains } from "./rows.ts";

const COLUMNS = "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata";
const WRITE_COLUMNS = "(thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value)";

function sqliteTables(db: Database): CheckpointTables {
  const latest: Statement<[string, string], CheckpointRow> = db.prepare(
    `SELECT ${COLUMNS} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? ORDER BY checkpoint_id DESC LIMIT 1`,
  );
  const exact: Statement<[string, string, string], CheckpointRow> = db.prepare(
    `SELECT ${COLUMNS} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?`,
  );
  // The checkpoints' keys as one parameter (a JSON array of [thread, namespace, id]), whatever their number.
  const writes: Statement<[string], KeyedWriteRow> = db.prepare(
    `SELECT thread_id, checkpoint_ns, checkpoint_id, task_id, channel, type, value FROM checkpoint_writes
      WHERE (thread_id, checkpoint_ns, checkpoint_id) IN
        (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(?))
      ORDER BY thread_id, checkpoint_ns, checkpoint_id, task_path, task_id, idx`,
  );
  // The few shapes of a page's statement, each prepared once.
  const pages = new Map<string, Statement<unknown[], CheckpointRow>>();
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
    async writes(keys) {
      return writes.all(JSON.stringify(keys.map((key) => [key.thread_id, key.checkpoint_ns, key.checkpoint_id])));
    },
    async list(query) {
      // Metadata is stored as the serializer's JSON text (for type "json"):
      // the filter is matched against it by `baton_contains`, in the query.
      const { sql, args } = checkpointListSql(query, () => "?", (filter, args) =>
        jsonContains("(CASE WHEN type = 'json' THEN CAST(metadata AS TEXT) END)", filter, args),
      );
      let page = pages.get(sql);
      if (page === undefined) pages.set(sql, (page = db.prepare(sql)));
      // Rows are read eagerly: the statement must not stay open across awaits.
      return page.all(...args);
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
