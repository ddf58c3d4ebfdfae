ALTER TABLE orders VALIDATE CONSTRAINT orders_total_nonnegative;

-- context: in-transaction
ALTER TABLE orders VALIDATE CONSTRAINT orders_total_nonnegative;

-- context: in-transaction not-valid=orders.orders_total_nonnegative
ALTER TABLE orders VALIDATE CONSTRAINT orders_other_check;

-- context: in-transaction not-valid=orders.orders_total_nonnegative
ALTER TABLE refunds VALIDATE CONSTRAINT orders_total_nonnegative;

-- context: in-transaction created=refunds not-valid=refunds.refunds_amount_positive
ALTER TABLE refunds VALIDATE CONSTRAINT refunds_amount_positive;

ALTER TABLE orders ADD CONSTRAINT orders_total_nonnegative CHECK (total >= 0) NOT VALID;
