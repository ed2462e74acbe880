-- Baton embedded schema: thread TTLs without rewriting the row per
-- activity (docs/threads.md). 0007's AFTER UPDATE trigger rewrote the row
-- whenever `updated_at` moved (up to three times a run). Now
-- `ttl_expires_ms` is a lower bound of the expiry, set only when a TTL is
-- set (insert, or an update naming the TTL columns); the sweep compares
-- `updated_at` plus the TTL with its time and moves the bound forward for a
-- thread used since. `ttl_pruned_at`: the `updated_at` a `keep_latest`
-- sweep pruned the thread at; while it is still the thread's `updated_at`,
-- the TTL is disarmed.
DROP TRIGGER threads_ttl_update;
CREATE TRIGGER threads_ttl_update AFTER UPDATE OF ttl_minutes, ttl_strategy ON threads
  WHEN NEW.ttl_minutes IS NOT NULL OR OLD.ttl_minutes IS NOT NULL
BEGIN
  UPDATE threads
     SET ttl_expires_ms = CASE WHEN NEW.ttl_minutes IS NULL THEN NULL
       ELSE CAST(round((julianday(NEW.updated_at) - 2440587.5) * 86400000.0) AS INTEGER) + CAST(round(NEW.ttl_minutes * 60000.0) AS INTEGER) END
   WHERE thread_id = NEW.thread_id;
END;

ALTER TABLE threads ADD COLUMN ttl_pruned_at TEXT;
UPDATE threads SET ttl_pruned_at = updated_at,
       ttl_expires_ms = CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) + CAST(round(ttl_minutes * 60000.0) AS INTEGER)
 WHERE ttl_minutes IS NOT NULL AND ttl_expires_ms IS NULL;
