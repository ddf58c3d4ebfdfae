ALTER TABLE orders ADD COLUMN memo text;

-- context: in-transaction created=refunds
ALTER TABLE refunds DROP COLUMN note;

ALTER TABLE orders DROP CONSTRAINT orders_amount_check;
