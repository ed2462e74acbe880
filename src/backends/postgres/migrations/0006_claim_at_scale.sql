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
-- changed is how the candidates are found, in two small sets:
--
-- * idle users' heads: users with no running run all rank first among
--   equal priorities (n = 0), so their best runs are simply the first ones
--   in (priority, FIFO) order whose user is not busy: a scan of the
--   pending index that stops after 16. It skips the runs of busy users,
--   so its cost grows only with the pending runs of busy users queued
--   ahead of the first idle user's run (a flood), not with the users.
-- * busy users' heads: users with running runs are at most as many as the
--   running runs; each offers its first 16 eligible runs (by the per-user
--   index of 0004), unless at the cap.
--
-- Sixteen from each set, not one, so that concurrent claimers skipping
-- each other's locked rows still find work when one user has the whole
-- queue.
CREATE INDEX runs_pending_order ON runs (priority DESC, available_at_ms, seq) WHERE status = 'pending';

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
  ), idle_heads AS MATERIALIZED (
    SELECT r.seq, r.priority, 0 AS n, r.available_at_ms FROM runs r
     WHERE r.status = 'pending' AND r.available_at_ms <= p_now
       AND COALESCE(r.owner, '') NOT IN (SELECT u FROM busy)
       AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.thread_id = r.thread_id AND x.status = 'running')
       AND NOT EXISTS (
         SELECT 1 FROM runs y
          WHERE y.thread_id = r.thread_id AND y.status = 'pending' AND (y.available_at_ms, y.seq) < (r.available_at_ms, r.seq))
     ORDER BY r.priority DESC, r.available_at_ms, r.seq
     LIMIT 16
  ), busy_heads AS MATERIALIZED (
    SELECT c.seq, c.priority, b.n, c.available_at_ms
      FROM busy b
      CROSS JOIN LATERAL (
        SELECT r.seq, r.priority, r.available_at_ms FROM runs r
         WHERE COALESCE(r.owner, '') = b.u AND r.status = 'pending' AND r.available_at_ms <= p_now
           AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.thread_id = r.thread_id AND x.status = 'running')
           AND NOT EXISTS (
             SELECT 1 FROM runs y
              WHERE y.thread_id = r.thread_id AND y.status = 'pending' AND (y.available_at_ms, y.seq) < (r.available_at_ms, r.seq))
         ORDER BY r.priority DESC, r.available_at_ms, r.seq
         LIMIT 16) c
     WHERE b.u = '' OR p_cap IS NULL OR b.n < p_cap
  ), head AS (
    SELECT * FROM idle_heads UNION ALL SELECT * FROM busy_heads
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
