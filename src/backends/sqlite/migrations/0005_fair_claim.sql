-- Baton embedded schema, version 5: the claim orders by priority, then by
-- how many runs the run's user has running (the anonymous user, owner NULL,
-- counted as one user), then FIFO (docs/scheduling.md).
--
-- runs_running_owner: the claim counts running runs per user once per
-- claim (GROUP BY over the running runs, at most the worker count).
-- runs_pending_thread: "is this the oldest pending run of its thread"
-- walks only that thread's pending runs, not its finished ones.
-- runs_pending_owner: the pending-runs-per-user count at creation, the
-- anonymous user included (runs_owner_status leaves NULL owners out).
CREATE INDEX runs_running_owner ON runs (owner) WHERE status = 'running';
CREATE INDEX runs_pending_thread ON runs (thread_id, available_at_ms, seq) WHERE status = 'pending';
CREATE INDEX runs_pending_owner ON runs (owner) WHERE status = 'pending';
