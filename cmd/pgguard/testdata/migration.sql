-- 20240501120000-create-refunds.js
CREATE TABLE refunds (id bigint PRIMARY KEY, order_id bigint NOT NULL, reason text);
CREATE INDEX refunds_order_id_idx ON refunds (order_id);

-- 20240502090000-add-fee.js
ALTER TABLE mymoolah_transactions ADD COLUMN fee_amount numeric(18,2);
CREATE INDEX mymoolah_transactions_fee_idx ON mymoolah_transactions (fee_amount);
ALTER TABLE "JournalLine" RENAME COLUMN amount TO "amountCents";
ALTER TABLE orders ADD COLUMN source varchar(20) NOT NULL DEFAULT 'api';
ALTER TABLE orders FROBNICATE;
