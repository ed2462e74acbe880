-- The claim as one server-side function, so that the per-user running cap
-- is exact across concurrent claimers (C6) while the claim stays a single
-- round trip that holds no lock between statements of the client.
--
-- The UPDATE picks and takes a run as before (its count of the user's
-- running runs is read from the statement's snapshot, so concurrent
-- claimers may each see the same free slot). For a run with an owner the
-- function then takes a per-user advisory lock and counts again: in READ
-- COMMITTED each statement of a VOLATILE function reads a new snapshot, so
-- the second count sees every claim committed before the lock was granted.
-- Over the cap it raises BT001; the statement, and the claim with it, is
-- rolled back and the caller looks again. Locks are released when the
-- calling statement's transaction ends, which for Baton is at once. A NULL
-- cap (a caller without one) takes no lock and recounts nothing.
--
-- plan_cache_mode: plpgsql would switch the claim to a generic plan after a
-- few calls, which walked far more rows (200 runs queued on one thread took
-- 25 to 29 s to drain instead of 17 to 19 s); each call is planned for its
-- own values, as the statement sent from the client was.
CREATE FUNCTION baton_claim(p_now BIGINT, p_cap INTEGER, p_worker TEXT, p_expires BIGINT, p_iso TEXT)
RETURNS SETOF runs
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
  claimed runs;
  running INTEGER;
BEGIN
  -- Every statement of Baton assumes it; say so rather than overshoot the cap.
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'Baton needs READ COMMITTED transactions (the Postgres default); this session uses %',
      current_setting('transaction_isolation') USING ERRCODE = 'BT002';
  END IF;
  WITH head AS (
    SELECT r.seq FROM runs r
     WHERE r.status = 'pending' AND r.available_at_ms <= p_now
       AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.thread_id = r.thread_id AND x.status = 'running')
       AND NOT EXISTS (
         SELECT 1 FROM runs y
          WHERE y.thread_id = r.thread_id AND y.status = 'pending' AND (y.available_at_ms, y.seq) < (r.available_at_ms, r.seq))
       AND (r.owner IS NULL OR p_cap IS NULL OR (SELECT COUNT(*) FROM runs o WHERE o.owner = r.owner AND o.status = 'running') < p_cap)
     ORDER BY r.available_at_ms, r.seq
     LIMIT 32
  ), candidate AS (
    SELECT r.seq FROM runs r
      JOIN threads t ON t.thread_id = r.thread_id
     WHERE r.seq IN (SELECT seq FROM head) AND r.status = 'pending'
       AND (t.lock_expires_ms IS NULL OR t.lock_expires_ms <= p_now)
     -- Fair across users: those with fewer running runs first, then FIFO.
     ORDER BY CASE WHEN r.owner IS NULL THEN 0
                   ELSE (SELECT COUNT(*) FROM runs o WHERE o.owner = r.owner AND o.status = 'running') END,
              r.available_at_ms, r.seq
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
    -- Two-key form (class "bato" in ASCII): its own lock space, apart from the
    -- one-key locks of creates and migrations.
    PERFORM pg_advisory_xact_lock(1650553967, hashtext(claimed.owner));
    SELECT COUNT(*) INTO running FROM runs WHERE owner = claimed.owner AND status = 'running';
    IF running > p_cap THEN
      RAISE EXCEPTION 'user % is at the cap of % running runs', claimed.owner, p_cap USING ERRCODE = 'BT001';
    END IF;
  END IF;
  RETURN NEXT claimed;
END
$$;
