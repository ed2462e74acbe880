-- Baton embedded schema: thread TTLs (docs/threads.md). A thread with a TTL
-- expires `ttl_minutes` after its last activity, which is the last change of
-- its `updated_at`; the triggers keep `ttl_expires_ms` equal to that sum
-- whichever statement moved it, so no write path has to remember. A
-- `keep_latest` sweep sets `ttl_expires_ms` to NULL (disarmed) without
-- touching `updated_at`; the thread's next activity arms it again.
ALTER TABLE threads ADD COLUMN ttl_strategy TEXT;
ALTER TABLE threads ADD COLUMN ttl_minutes REAL;
ALTER TABLE threads ADD COLUMN ttl_expires_ms INTEGER;

CREATE TRIGGER threads_ttl_insert AFTER INSERT ON threads
  WHEN NEW.ttl_minutes IS NOT NULL
BEGIN
  UPDATE threads
     SET ttl_expires_ms = CAST(round((julianday(NEW.updated_at) - 2440587.5) * 86400000.0) AS INTEGER) + CAST(round(NEW.ttl_minutes * 60000.0) AS INTEGER)
   WHERE thread_id = NEW.thread_id;
END;

CREATE TRIGGER threads_ttl_update AFTER UPDATE OF updated_at, ttl_minutes ON threads
  WHEN NEW.ttl_minutes IS NOT NULL OR OLD.ttl_minutes IS NOT NULL
BEGIN
  UPDATE threads
     SET ttl_expires_ms = CASE WHEN NEW.ttl_minutes IS NULL THEN NULL
       ELSE CAST(round((julianday(NEW.updated_at) - 2440587.5) * 86400000.0) AS INTEGER) + CAST(round(NEW.ttl_minutes * 60000.0) AS INTEGER) END
   WHERE thread_id = NEW.thread_id;
END;

-- The sweep reads due threads in expiry order.
CREATE INDEX threads_ttl_due ON threads (ttl_expires_ms) WHERE ttl_expires_ms IS NOT NULL;
