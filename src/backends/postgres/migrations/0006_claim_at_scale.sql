-- The claim's cost no longer grows with the number of users who have
-- pending runs (docs/scaling.md, "Claim at scale"). Migration 0004 took
-- up to 16 heads from every such user, found by a loose index scan: with
-- 1,000 users and 10,000 pending runs a claim took about 90 ms, so one
-- Postgres served about 10 to 20 claims a second whatever the claimers.
--
-- The order is unchanged (priority, then the user with fewer running runs,
-- the anonymous user counted as one user '', then FIFO; only the oldest
-- pending run of a thread is eligible; named users at the cap are
-- skipped), and so is the per-user recount under an advisory lock. What
-- changed is how the candidates are found. First, three small sets:
--
-- * idle named users' heads: users with no running run rank first among
--   equal priorities (n = 0), so their best runs are the first ones in
--   (priority, FIFO) order of a user that is not busy. They are looked for
--   among the first 256 named pending runs in that order (an index that
--   leaves anonymous runs out, so an anonymous flood does not hide them);
-- * the anonymous user's first 16 eligible runs, when it is idle;
-- * busy users' heads: users with running runs are at most as many as the
--   running runs; each offers its first 16 eligible runs, unless at the
--   cap.
--
-- These decide exactly when the window held every named pending run, or an
-- idle named user's run: an idle user's run beyond the window comes later
-- in (priority, FIFO) order than the one found. Otherwise (a named user's
-- flood fills the first 256 named runs) an idle user's run may be waiting
-- behind it, and the claim falls back to 0004's search of every user with
-- pending runs, whose cost grows with those users; so a user's run is
-- never left behind a flood however long it is. Sixteen from each set, not
-- one, so that concurrent claimers skipping each other's locked rows still
-- find work when one user has the whole queue.
CREATE INDEX runs_pending_named_order ON runs (priority DESC, available_at_ms, seq) WHERE status = 'pending' AND owner IS NOT NULL;

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
  WITH busy AS MATERIALIZED (
    SELECT COALESCE(owner, '') AS u, COUNT(*)::int AS n FROM runs WHERE status = 'running' GROUP BY 1
  ), named_front AS MATERIALIZED (
    SELECT r.seq, r.thread_id, r.owner, r.priority, r.available_at_ms FROM runs r
     WHERE r.status = 'pending' AND r.owner IS NOT NULL AND r.available_at_ms <= p_now
     ORDER BY r.priority DESC, r.available_at_ms, r.seq
     LIMIT 256
  ), idle_named AS MATERIALIZED (
    SELECT f.seq, f.priority, 0 AS n, f.available_at_ms FROM named_front f
     WHERE f.owner NOT IN (SELECT u FROM busy)
       AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.thread_id = f.thread_id AND x.status = 'running')
       AND NOT EXISTS (
         SELECT 1 FROM runs y
          WHERE y.thread_id = f.thread_id AND y.status = 'pending' AND (y.available_at_ms, y.seq) < (f.available_at_ms, f.seq))
     ORDER BY f.priority DESC, f.available_at_ms, f.seq
     LIMIT 16
  ), users AS (
    SELECT b.u, b.n FROM busy b WHERE b.u = '' OR p_cap IS NULL OR b.n < p_cap
    UNION ALL
    SELECT '', 0 WHERE NOT EXISTS (SELECT 1 FROM busy WHERE u = '')
  ), user_heads AS MATERIALIZED (
    SELECT c.seq, c.priority, users.n, c.available_at_ms
      FROM users
      CROSS JOIN LATERAL (
        SELECT r.seq, r.priority, r.available_at_ms FROM runs r
         WHERE COALESCE(r.owner, '') = users.u AND r.status = 'pending' AND r.available_at_ms <= p_now
           AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.thread_id = r.thread_id AND x.status = 'running')
           AND NOT EXISTS (
             SELECT 1 FROM runs y
              WHERE y.thread_id = r.thread_id AND y.status = 'pending' AND (y.available_at_ms, y.seq) < (r.available_at_ms, r.seq))
         ORDER BY r.priority DESC, r.available_at_ms, r.seq
         LIMIT 16) c
  ), head AS (
    -- Exact only if every named pending run was in the window, or an idle named user was found in it: else an idle
    -- user's run may wait beyond the window, and the fallback below decides.
    SELECT * FROM idle_named
    UNION ALL
    SELECT * FROM user_heads WHERE EXISTS (SELECT 1 FROM idle_named) OR (SELECT COUNT(*) FROM named_front) < 256
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
    -- Nothing in the small sets: search every user with pending runs (0004's claim).
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
