-- A thread's pending and running runs, found without reading its history.
-- Admission (in-flight count and the runs a double text supersedes), the
-- joinable-run lookup and the thread's live runs filtered the thread's
-- every run by status: a conversation with 2,000 finished runs read 2,000
-- rows (2.7 ms on Postgres, 1.2 ms on SQLite) on every new run, inside the
-- transaction that holds the thread. With this index it reads the one or
-- two live runs (docs/scaling.md, "Per-run costs"). The statements name the
-- statuses in this order, so that SQLite matches the index's predicate.
CREATE INDEX runs_live_thread ON runs (thread_id, available_at_ms, seq) WHERE status IN ('pending', 'running');
