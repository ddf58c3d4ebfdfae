CREATE INDEX CONCURRENTLY orders_customer_id_status_idx ON orders (customer_id, status);

CREATE UNIQUE INDEX CONCURRENTLY "JournalLine_reference_key" ON "JournalLine" ("reference") WHERE "deletedAt" IS NULL;
