ALTER TABLE orders ADD CONSTRAINT orders_total_nonnegative CHECK (total >= 0);

ALTER TABLE "JournalLine" ADD CHECK ("debit" >= 0 AND "credit" >= 0);

ALTER TABLE "JournalLine" ADD COLUMN "side" text CHECK ("side" IN ('debit', 'credit'));

-- context: in-transaction
ALTER TABLE public.orders ADD CONSTRAINT orders_status_known CHECK (status IN ('new', 'paid', 'shipped')) NO INHERIT;
