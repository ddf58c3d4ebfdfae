CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);

-- context: invalid-index=other_idx
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);

-- without IF NOT EXISTS the build fails loudly on the existing name
-- context: invalid-index=orders_status_idx
CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);
