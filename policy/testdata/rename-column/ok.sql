ALTER TABLE orders ADD COLUMN memo text;

-- context: created=refunds
ALTER TABLE refunds RENAME COLUMN note TO memo;

ALTER TABLE orders RENAME CONSTRAINT orders_check TO orders_amount_check;
