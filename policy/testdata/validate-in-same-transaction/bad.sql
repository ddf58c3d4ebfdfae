ALTER TABLE orders ADD CONSTRAINT orders_total_nonnegative CHECK (total >= 0) NOT VALID, VALIDATE CONSTRAINT orders_total_nonnegative;

-- context: in-transaction not-valid=orders.orders_total_nonnegative
ALTER TABLE orders VALIDATE CONSTRAINT orders_total_nonnegative;

-- context: in-transaction not-valid-fk="JournalLine"."JournalLine_accountId_fkey"
ALTER TABLE "JournalLine" VALIDATE CONSTRAINT "JournalLine_accountId_fkey";

-- context: not-alone not-valid-fk=orders.orders_customer_id_fkey
ALTER TABLE public.orders VALIDATE CONSTRAINT orders_customer_id_fkey;
