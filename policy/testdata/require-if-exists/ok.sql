CREATE TABLE IF NOT EXISTS audit_log (id bigserial PRIMARY KEY, entry text);

CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);

DROP INDEX CONCURRENTLY IF EXISTS orders_note_idx;

ALTER TABLE "JournalLine" ADD COLUMN IF NOT EXISTS "legacyRef" text;

-- inside a transaction a failure rolls everything back: re-running is safe
-- context: in-transaction
CREATE TABLE refunds (id bigserial PRIMARY KEY);
