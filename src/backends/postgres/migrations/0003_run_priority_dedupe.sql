-- A run's priority (claim order across threads, higher first) and the key
-- of the request that created it (for idempotent retries). Stored from now
-- on; the claim and the idempotency check use them once those land.
ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN dedupe_key TEXT;
