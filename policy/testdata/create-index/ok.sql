CREATE INDEX CONCURRENTLY orders_customer_id_idx ON orders (customer_id);

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "JournalLine_reference_key" ON "JournalLine" ("reference");

-- a table created in the same transaction is empty: no need for CONCURRENTLY
-- context: in-transaction created=refunds
CREATE INDEX refunds_order_id_idx ON refunds (order_id);

-- the catalog says the table is small
-- context: small=countries
CREATE INDEX countries_code_idx ON countries (code);

SELECT * FROM orders WHERE customer_id = 1;

DROP INDEX CONCURRENTLY IF EXISTS orders_customer_id_idx;
