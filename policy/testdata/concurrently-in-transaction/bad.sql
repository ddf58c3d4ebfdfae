-- context: in-transaction
CREATE INDEX CONCURRENTLY orders_customer_id_idx ON orders (customer_id);

-- context: not-alone
CREATE INDEX CONCURRENTLY orders_customer_id_idx ON orders (customer_id);

-- context: in-transaction
DROP INDEX CONCURRENTLY orders_customer_id_idx;

-- context: in-transaction
REINDEX INDEX CONCURRENTLY orders_customer_id_idx;

-- context: in-transaction
ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;

DO $$
BEGIN
  CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);
END
$$;

-- context: in-transaction tool=knex
CREATE INDEX CONCURRENTLY big_account_idx ON big (account);
