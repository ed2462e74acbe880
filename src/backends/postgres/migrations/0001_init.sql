-- Baton scale-out schema, version 1. The same records as the embedded
-- schema: JSON in JSONB, record times as ISO-8601 text (written by the
-- application's clock, so they sort as text), and epoch milliseconds
-- (BIGINT, *_ms) where the queue compares times.

CREATE TABLE assistants (
  assistant_id TEXT PRIMARY KEY,
  graph_id     TEXT NOT NULL,
  name         TEXT NOT NULL,
  description  TEXT,
  config       JSONB NOT NULL,
  context      JSONB NOT NULL,
  metadata     JSONB NOT NULL,
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
  config       JSONB NOT NULL,
  context      JSONB NOT NULL,
  metadata     JSONB NOT NULL,
  created_at   TEXT NOT NULL,
  PRIMARY KEY (assistant_id, version)
);

-- A thread row is also the thread's mutex: run creation locks it (C2), the
-- claim locks it with SKIP LOCKED (C1), and state updates outside a run take
-- the lease in lock_owner / lock_expires_ms.
CREATE TABLE threads (
  thread_id       TEXT PRIMARY KEY,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  metadata        JSONB NOT NULL,
  status          TEXT NOT NULL,
  "values"        JSONB,
  interrupts      JSONB NOT NULL,
  config          JSONB NOT NULL,
  error           JSONB,
  lock_owner      TEXT,
  lock_expires_ms BIGINT
);
CREATE INDEX threads_created ON threads (created_at);
CREATE INDEX threads_metadata ON threads USING GIN (metadata jsonb_path_ops);

-- The runs table is the queue; `seq` orders runs FIFO.
CREATE TABLE runs (
  seq                BIGSERIAL PRIMARY KEY,
  run_id             TEXT NOT NULL UNIQUE,
  thread_id          TEXT NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
  assistant_id       TEXT NOT NULL,
  graph_id           TEXT NOT NULL,
  status             TEXT NOT NULL,
  metadata           JSONB NOT NULL,
  multitask_strategy TEXT NOT NULL,
  kwargs             JSONB NOT NULL,
  attempt            INTEGER NOT NULL DEFAULT 0,
  lease_owner        TEXT,
  lease_expires_ms   BIGINT,
  cancel_action      TEXT,
  available_at_ms    BIGINT NOT NULL,
  error              TEXT,
  output             JSONB,
  owner              TEXT,
  created_at         TEXT NOT NULL,
  updated_at         TEXT NOT NULL
);
-- C1 backstop: at most one running run per thread, whatever the code does.
CREATE UNIQUE INDEX runs_one_running_per_thread ON runs (thread_id) WHERE status = 'running';
CREATE INDEX runs_pending ON runs (available_at_ms, seq) WHERE status = 'pending';
CREATE INDEX runs_pending_thread ON runs (thread_id, available_at_ms, seq) WHERE status = 'pending';
CREATE INDEX runs_thread ON runs (thread_id, seq);
CREATE INDEX runs_running_lease ON runs (lease_expires_ms) WHERE status = 'running';
CREATE INDEX runs_owner_status ON runs (owner, status) WHERE owner IS NOT NULL;

CREATE TABLE checkpoints (
  thread_id            TEXT NOT NULL,
  checkpoint_ns        TEXT NOT NULL DEFAULT '',
  checkpoint_id        TEXT NOT NULL,
  parent_checkpoint_id TEXT,
  run_id               TEXT,
  type                 TEXT NOT NULL,
  checkpoint           BYTEA NOT NULL,
  metadata             BYTEA NOT NULL,
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
  value         BYTEA NOT NULL,
  PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);

-- Namespace labels joined with U+001F, each followed by it, so a prefix
-- search is a plain string prefix.
CREATE TABLE store_items (
  namespace  TEXT NOT NULL,
  key        TEXT NOT NULL,
  value      JSONB NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (namespace, key)
);
