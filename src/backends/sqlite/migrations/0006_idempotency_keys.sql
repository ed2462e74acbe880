-- Baton embedded schema, version 6: idempotency keys (Idempotency-Key on
-- run and thread creation). One row per scope (caller and record kind) and
-- key; `response` is NULL while the first request is in flight.
CREATE TABLE idempotency_keys (
  scope         TEXT NOT NULL,
  key           TEXT NOT NULL,
  fingerprint   TEXT NOT NULL,
  resource_id   TEXT NOT NULL,
  response      TEXT,
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at_ms);
