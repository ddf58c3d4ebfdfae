ALTER TABLE orders SET TABLESPACE fast_ssd;

ALTER TABLE "JournalLine" SET TABLESPACE "Archive";

ALTER MATERIALIZED VIEW daily_totals SET TABLESPACE fast_ssd;

-- context: in-transaction large=public.payments
ALTER TABLE public.payments SET TABLESPACE fast_ssd;
