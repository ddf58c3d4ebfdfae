ALTER TABLE orders ALTER COLUMN status DROP NOT NULL;

-- context: not-null-check=orders.status
ALTER TABLE orders ALTER COLUMN status SET NOT NULL;

-- context: created=refunds
ALTER TABLE refunds ALTER COLUMN reason SET NOT NULL;

ALTER TABLE orders ADD CONSTRAINT orders_status_not_null CHECK (status IS NOT NULL) NOT VALID;
