CREATE INDEX CONCURRENTLY ON orders (customer_id, status);

CREATE UNIQUE INDEX CONCURRENTLY ON "JournalLine" ("reference") WHERE "deletedAt" IS NULL;

CREATE INDEX CONCURRENTLY ON orders (lower(email));
