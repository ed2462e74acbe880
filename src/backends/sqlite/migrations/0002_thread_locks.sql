-- Baton embedded schema, version 2: short exclusive locks on threads, taken
-- by state updates made outside a run. The claim skips a locked thread, and a
-- lock is only granted while no run of the thread is running, so a state
-- update and a run never write one thread at once (C1).
ALTER TABLE threads ADD COLUMN lock_owner TEXT;
ALTER TABLE threads ADD COLUMN lock_expires_ms INTEGER;
