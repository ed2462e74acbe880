-- Thread TTLs (docs/threads.md). A thread with a TTL expires `ttl_minutes`
-- after its last activity, which is the last change of its `updated_at`;
-- the triggers keep `ttl_expires_ms` equal to that sum whichever statement
-- moved it, so no write path has to remember. A `keep_latest` sweep sets
-- `ttl_expires_ms` to NULL (disarmed) without touching `updated_at`; the
-- thread's next activity arms it again.
ALTER TABLE threads
  ADD COLUMN ttl_strategy TEXT,
  ADD COLUMN ttl_minutes DOUBLE PRECISION,
  ADD COLUMN ttl_expires_ms BIGINT;

CREATE FUNCTION baton_thread_ttl_expiry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.ttl_expires_ms := CASE WHEN NEW.ttl_minutes IS NULL THEN NULL
    ELSE (round(extract(epoch FROM NEW.updated_at::timestamptz) * 1000) + round(NEW.ttl_minutes * 60000))::bigint END;
  RETURN NEW;
END
$$;

CREATE TRIGGER threads_ttl_insert BEFORE INSERT ON threads
  FOR EACH ROW WHEN (NEW.ttl_minutes IS NOT NULL) EXECUTE FUNCTION baton_thread_ttl_expiry();
CREATE TRIGGER threads_ttl_update BEFORE UPDATE OF updated_at, ttl_minutes ON threads
  FOR EACH ROW WHEN (NEW.ttl_minutes IS NOT NULL OR OLD.ttl_minutes IS NOT NULL) EXECUTE FUNCTION baton_thread_ttl_expiry();

-- The sweep reads due threads in expiry order.
CREATE INDEX threads_ttl_due ON threads (ttl_expires_ms) WHERE ttl_expires_ms IS NOT NULL;
