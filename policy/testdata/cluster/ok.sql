-- only marks the index to use: no rewrite
ALTER TABLE orders CLUSTER ON orders_created_at_idx;

ALTER TABLE orders SET WITHOUT CLUSTER;

-- context: in-transaction created=refunds
CLUSTER refunds USING refunds_pkey;

-- context: small=countries
CLUSTER countries USING countries_pkey;
