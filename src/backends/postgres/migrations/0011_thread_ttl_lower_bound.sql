-- Thread TTLs without a write per activity (docs/threads.md). 0007's
-- triggers rewrote `ttl_expires_ms` whenever `updated_at` moved, so every
-- update of a thread with a TTL changed an indexed column (no HOT update).
-- Now `ttl_expires_ms` is a lower bound of the expiry, set only when a TTL
-- is set (insert, or an update naming the TTL columns): activity moves
-- `updated_at` alone. The sweep takes threads whose bound passed, compares
-- `updated_at` plus the TTL with its time, and moves the bound forward
-- instead of pruning a thread used since. The expiry shown is computed from
-- `updated_at` when reading. `ttl_pruned_at`: the `updated_at` a
-- `keep_latest` sweep pruned the thread at; while it is still the thread's
-- `updated_at` (no activity since), the TTL is disarmed.
DROP TRIGGER threads_ttl_update ON threads;
CREATE TRIGGER threads_ttl_update BEFORE UPDATE OF ttl_minutes, ttl_strategy ON threads
  FOR EACH ROW WHEN (NEW.ttl_minutes IS NOT NULL OR OLD.ttl_minutes IS NOT NULL) EXECUTE FUNCTION baton_thread_ttl_expiry();

ALTER TABLE threads ADD COLUMN ttl_pruned_at TEXT;
-- Threads 0007 disarmed (NULL expiry with a TTL): disarmed at their current write.
UPDATE threads SET ttl_pruned_at = updated_at, ttl_expires_ms = (floor(extract(epoch FROM clock_timestamp()) * 1000) + round(ttl_minutes * 60000))::bigint
 WHERE ttl_minutes IS NOT NULL AND ttl_expires_ms IS NULL;
