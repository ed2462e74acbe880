-- The claim orders by priority, then by how many runs the run's user has
-- running (the anonymous user, owner NULL, counted as one user ''), then
-- FIFO; only the oldest pending run of each thread is eligible, as before
-- (docs/scheduling.md). Replaces baton_claim of migration 0002; its
-- per-user recount under an advisory lock (exact cap across claimers,
-- OVER_CAP = BT001) is unchanged.
--
-- Why per user: migration 0002 took the first 32 claimable runs in FIFO
-- order and chose the fairest of them, so a user queued behind another
-- user's flood of uncapped runs (the anonymous user, or a high cap) was not
-- among them until the flood drained. Now `users` lists the users with
-- pending runs by a loose index scan on runs_pending_user (one index probe
-- per user, not one per pending run), and each user not at the cap offers
-- its first 16 claimable runs (priority, then FIFO): a claim costs about
-- one probe per user with pending runs. Sixteen per user, not one, so
-- concurrent claimers that skip each other's locked rows still find work
-- when one user has the whole queue.
CREATE INDEX runs_pending_user ON runs ((COALESCE(owner, '')), priority DESC, available_at_ms, seq) WHERE status = 'pending';
CREATE INDEX runs_running_owner ON runs ((COALESCE(owner, ''))) WHERE status = 'running';

CREATE OR REPLACE FUNCTION baton_claim(p_now BIGINT, p_cap INTEGER, p_worker TEXT, p_expires BIGINT, p_iso TEXT)
RETURNS SETOF runs
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
  claimed runs;
  running INTEGER;
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'Baton needs READ COMMITTED transactions (the Postgres default); this session uses %',
      current_setting('transaction_isolation') USING ERRCODE = 'BT002';
  END IF;
  WITH RECURSIVE users(u) AS (
    (SELECT COALESCE(owner, '') FROM runs WHERE status = 'pending' ORDER BY COALESCE(owner, '') LIMIT 1)
    UNION ALL
    SELECT (SELECT COALESCE(r.owner, '') FROM runs r
             WHERE r.status = 'pending' AND COALESCE(r.owner, '') > users.u
             ORDER BY COALESCE(r.owner, '') LIMIT 1)
      FROM users WHERE users.u IS NOT NULL
  ), busy AS (
    SELECT COALESCE(owner, '') AS u, COUNT(*)::int AS n FROM runs WHERE status = 'running' GROUP BY 1
  ), head AS MATERIALIZED (
    SELECT c.seq, c.priority, COALESCE(b.n, 0) AS n, c.available_at_ms
      FROM users
      LEFT JOIN busy b ON b.u = users.u
      CROSS JOIN LATERAL (
        SELECT r.seq, r.priority, r.available_at_ms FROM runs r
         WHERE COALESCE(r.owner, '') = users.u AND r.status = 'pending' AND r.available_at_ms <= p_now
           AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.thread_id = r.thread_id AND x.status = 'running')
           AND NOT EXISTS (
             SELECT 1 FROM runs y
              WHERE y.thread_id = r.thread_id AND y.status = 'pending' AND (y.available_at_ms, y.seq) < (r.available_at_ms, r.seq))
         ORDER BY r.priority DESC, r.available_at_ms, r.seq
         LIMIT 16) c
     WHERE users.u IS NOT NULL
       AND (users.u = '' OR p_cap IS NULL OR COALESCE(b.n, 0) < p_cap)
  ), candidate AS (
    SELECT r.seq FROM runs r
      JOIN head h ON h.seq = r.seq
      JOIN threads t ON t.thread_id = r.thread_id
     WHERE r.status = 'pending'
       AND (t.lock_expires_ms IS NULL OR t.lock_expires_ms <= p_now)
     ORDER BY h.priority DESC, h.n, h.available_at_ms, h.seq
     LIMIT 1
     FOR UPDATE OF r, t SKIP LOCKED
  )
  UPDATE runs SET status = 'running', attempt = runs.attempt + 1, lease_owner = p_worker, lease_expires_ms = p_expires, updated_at = p_iso
    FROM candidate WHERE runs.seq = candidate.seq
  RETURNING runs.* INTO claimed;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  IF claimed.owner IS NOT NULL AND p_cap IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock(1650553967, hashtext(claimed.owner));
    SELECT COUNT(*) INTO running FROM runs WHERE owner = claimed.owner AND status = 'running';
    IF running > p_cap THEN
      RAISE EXCEPTION 'user % is at the cap of % running runs', claimed.owner, p_cap USING ERRCODE = 'BT001';
    END IF;
  END IF;
  RETURN NEXT claimed;
END
$$;
