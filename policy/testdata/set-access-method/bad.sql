ALTER TABLE orders SET ACCESS METHOD columnar;

ALTER TABLE "JournalLine" SET ACCESS METHOD heap2;

-- context: large=public.events
ALTER MATERIALIZED VIEW public.events SET ACCESS METHOD columnar;
