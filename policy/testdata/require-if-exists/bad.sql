CREATE TABLE audit_log (id bigserial PRIMARY KEY, entry text);

CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);

DROP INDEX CONCURRENTLY orders_note_idx;

ALTER TABLE "JournalLine" ADD COLUMN "legacyRef" text;

CREATE EXTENSION pgcrypto;

CREATE SCHEMA reporting;
