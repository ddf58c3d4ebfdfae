ALTER TABLE orders ADD COLUMN memo text;

-- context: in-transaction created=refunds
ALTER TABLE refunds DROP COLUMN note;

ALTER TABLE orders DROP CONSTRAINT orders_amount_check;

-- a temporary table of the session: nobody else reads it
-- context: temp=scratch
ALTER TABLE scratch DROP COLUMN note;

-- context: missing=no_such_table
ALTER TABLE IF EXISTS no_such_table DROP COLUMN note;
