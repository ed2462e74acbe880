-- A thread's pending and running runs, found without reading its history.
-- Admission (in-flight count and the runs a double text supersedes), the
-- joinable-run lookup and the thread's live runs filtered the thread's
-- every run by status: a conversation with 2,000 finished runs read 2,000
-- rows (2.7 ms on Postgres, 1.2 ms on SQLite) on every new run, inside the
-- transaction that holds the thread. With this index it reads the one or
-- two live runs (docs/scaling.md, "Per-run costs"). The statements name the
-- statuses in this order, so that SQLite matches the index's predicate.
CREATE INDEX runs_live_thread ON runs (thread_id, available_at_ms, seq) WHERE status IN ('pending', 'running');

-- A claim that finds nothing due returns after one probe of the pending
-- index instead of planning and running the claim's search: about 0.1 ms
-- instead of 1.7 ms of Postgres time. Most claims find nothing (a worker
-- claims after every run it finishes, on every wake-up, and on each poll,
-- and every worker process is woken by each new run), so with many worker
-- processes the empty claims, not the successful ones, were most of the
-- claim's cost. The search itself is 0006's, renamed; the isolation check
-- comes first here too, so an empty queue does not hide a wrong session.
ALTER FUNCTION baton_claim(BIGINT, INTEGER, TEXT, BIGINT, TEXT) RENAME TO baton_claim_search;

CREATE FUNCTION baton_claim(p_now BIGINT, p_cap INTEGER, p_worker TEXT, p_expires BIGINT, p_iso TEXT)
RETURNS SETOF runs
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'Baton needs READ COMMITTED transactions (the Postgres default); this session uses %',
      current_setting('transaction_isolation') USING ERRCODE = 'BT002';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM runs WHERE status = 'pending' AND available_at_ms <= p_now) THEN
    RETURN;
  END IF;
  RETURN QUERY SELECT * FROM baton_claim_search(p_now, p_cap, p_worker, p_expires, p_iso);
END
$$;
