-- Crons (docs/crons.md): one row per cron; `next_run_ms` is when it fires
-- next (NULL: it will not). A thread's crons go with the thread.
CREATE TABLE crons (
  cron_id          TEXT PRIMARY KEY,
  assistant_id     TEXT NOT NULL,
  thread_id        TEXT REFERENCES threads (thread_id) ON DELETE CASCADE,
  on_run_completed TEXT,
  end_time         TEXT,
  schedule         TEXT NOT NULL,
  timezone         TEXT,
  created_at       TEXT NOT NULL,
  updated_at       TEXT NOT NULL,
  user_id          TEXT,
  payload          TEXT NOT NULL,
  next_run_ms      INTEGER,
  metadata         TEXT NOT NULL,
  enabled          INTEGER NOT NULL
);
CREATE INDEX crons_due ON crons (next_run_ms) WHERE enabled = 1 AND next_run_ms IS NOT NULL;
CREATE INDEX crons_created ON crons (created_at);
CREATE INDEX crons_thread ON crons (thread_id);
-- The fire key: a scheduled time of a cron is claimed once, in the
-- transaction that creates its run. Only each cron's latest fire is kept
-- (older times can no longer fire: the cron's next_run_ms is past them).
CREATE TABLE cron_fires (
  cron_id     TEXT NOT NULL REFERENCES crons (cron_id) ON DELETE CASCADE,
  fire_ms     INTEGER NOT NULL,
  run_id      TEXT NOT NULL,
  fired_at_ms INTEGER NOT NULL,
  PRIMARY KEY (cron_id, fire_ms)
);
