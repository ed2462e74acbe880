-- Crons by assistant (docs/crons.md): deleting an assistant deletes its
-- crons in the same transaction, and a search or count filters by
-- assistant_id; without an index both read every cron.
CREATE INDEX IF NOT EXISTS crons_assistant ON crons (assistant_id);
