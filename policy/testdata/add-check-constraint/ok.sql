ALTER TABLE orders ADD CONSTRAINT orders_total_nonnegative CHECK (total >= 0) NOT VALID;

ALTER TABLE orders VALIDATE CONSTRAINT orders_total_nonnegative;

CREATE TABLE "Invoice" (id bigint PRIMARY KEY, total numeric CHECK (total >= 0));

-- context: created=refunds
ALTER TABLE refunds ADD CONSTRAINT refunds_amount_positive CHECK (amount > 0);

-- context: small="JournalLine"
ALTER TABLE "JournalLine" ADD CHECK ("debit" >= 0);
