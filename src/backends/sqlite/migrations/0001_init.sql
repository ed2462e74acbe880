-- Baton embedded schema, version 1.
-- JSON columns hold TEXT; times are ISO-8601 TEXT for records and epoch
-- milliseconds (INTEGER, *_ms) where the queue compares them.

CREATE TABLE assistants (
  assistant_id TEXT PRIMARY KEY,
  graph_id     TEXT NOT NULL,
  name         TEXT NOT NULL,
  description  TEXT,
  config       TEXT NOT NULL,
  context      TEXT NOT NULL,
  metadata     TEXT NOT NULL,
  version      INTEGER NOT NULL,
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL
);
CREATE INDEX assistants_graph ON assistants (graph_id);

CREATE TABLE assistant_versions (
  assistant_id TEXT NOT NULL REFERENCES assistants (assistant_id) ON DELETE CASCADE,
  version      INTEGER NOT NULL,
  graph_id     TEXT NOT NULL,
  name         TEXT NOT NULL,
  description  TEXT,
  config       TEXT NOT NULL,
  context      TEXT NOT NULL,
  metadata     TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  PRIMARY KEY (assistant_id, version)
);

CREATE TABLE threads (
  thread_id  TEXT PRIMARY KEY,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  metadata   TEXT NOT NULL,
  status     TEXT NOT NULL,
  "values"   TEXT,
  interrupts TEXT NOT NULL,
  config     TEXT NOT NULL,
  error      TEXT
);
CREATE INDEX threads_created ON threads (created_at);

-- The runs table is the queue. `seq` orders runs FIFO; a worker claims a
-- pending run by setting status, owner, attempt and lease in one statement.
CREATE TABLE runs (
  seq                INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id             TEXT NOT NULL UNIQUE,
  thread_id          TEXT NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
  assistant_id       TEXT NOT NULL,
  graph_id           TEXT NOT NULL,
  status             TEXT NOT NULL,
  metadata           TEXT NOT NULL,
  multitask_strategy TEXT NOT NULL,
  kwargs             TEXT NOT NULL,
  attempt            INTEGER NOT NULL DEFAULT 0,
  lease_owner        TEXT,
  lease_expires_ms   INTEGER,
  cancel_action      TEXT,
  available_at_ms    INTEGER NOT NULL,
  error              TEXT,
  -- What `wait` and `join` return: the final values, or {"__error__": ...}.
  output             TEXT,
  created_at         TEXT NOT NULL,
  updated_at         TEXT NOT NULL
);
-- C1 backstop: at most one running run per thread, whatever the code does.
CREATE UNIQUE INDEX runs_one_running_per_thread ON runs (thread_id) WHERE status = 'running';
CREATE INDEX runs_pending ON runs (available_at_ms, seq) WHERE status = 'pending';
CREATE INDEX runs_thread ON runs (thread_id, seq);

CREATE TABLE checkpoints (
  thread_id            TEXT NOT NULL,
  checkpoint_ns        TEXT NOT NULL DEFAULT '',
  checkpoint_id        TEXT NOT NULL,
  parent_checkpoint_id TEXT,
  run_id               TEXT,
  type                 TEXT NOT NULL,
  checkpoint           BLOB NOT NULL,
  metadata             BLOB NOT NULL,
  PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);
CREATE INDEX checkpoints_run ON checkpoints (thread_id, run_id);

CREATE TABLE checkpoint_writes (
  thread_id     TEXT NOT NULL,
  checkpoint_ns TEXT NOT NULL DEFAULT '',
  checkpoint_id TEXT NOT NULL,
  task_id       TEXT NOT NULL,
  task_path     TEXT NOT NULL DEFAULT '',
  idx           INTEGER NOT NULL,
  channel       TEXT NOT NULL,
  type          TEXT NOT NULL,
  value         BLOB NOT NULL,
  PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);

-- Namespace labels are joined with U+001F and end with it, so a prefix
-- search is a plain string prefix.
CREATE TABLE store_items (
  namespace  TEXT NOT NULL,
  key        TEXT NOT NULL,
  value      TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (namespace, key)
);
