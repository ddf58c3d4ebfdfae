ALTER TABLE orders RENAME TO purchase_orders;

ALTER TABLE "JournalLine" RENAME TO "LedgerLine";

-- context: in-transaction
ALTER TABLE IF EXISTS public.payments RENAME TO payments_old;
