CREATE INDEX CONCURRENTLY orders_customer_id_idx ON orders (customer_id);

DROP INDEX CONCURRENTLY orders_customer_id_idx;

REINDEX INDEX CONCURRENTLY orders_customer_id_idx;

-- REFRESH ... CONCURRENTLY may run in a transaction block
-- context: in-transaction
REFRESH MATERIALIZED VIEW CONCURRENTLY daily_totals;

-- context: in-transaction
CREATE INDEX orders_status_idx ON orders (status);
