-- Baton embedded schema, version 3: the user a run belongs to, for per-user
-- caps and fair selection across users (C6).
ALTER TABLE runs ADD COLUMN owner TEXT;
CREATE INDEX runs_owner_status ON runs (owner, status) WHERE owner IS NOT NULL;
