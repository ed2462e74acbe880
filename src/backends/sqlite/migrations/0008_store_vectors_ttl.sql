-- Store item TTLs and semantic search (docs/store.md). An item with a TTL
-- (`ttl_minutes`) expires at `expires_at_ms`, pushed forward when it is
-- read with refresh; an expired item is invisible at once and deleted by the
-- sweeper. `store_vectors` holds the embeddings of an item's indexed texts
-- (float32, little-endian), one row per text, removed with the item.
ALTER TABLE store_items ADD COLUMN ttl_minutes REAL;
ALTER TABLE store_items ADD COLUMN expires_at_ms INTEGER;
CREATE INDEX store_items_expiry ON store_items (expires_at_ms) WHERE expires_at_ms IS NOT NULL;
CREATE TABLE store_vectors (
  namespace TEXT NOT NULL,
  key       TEXT NOT NULL,
  field     TEXT NOT NULL,
  embedding BLOB NOT NULL,
  PRIMARY KEY (namespace, key, field),
  FOREIGN KEY (namespace, key) REFERENCES store_items (namespace, key) ON DELETE CASCADE
);
