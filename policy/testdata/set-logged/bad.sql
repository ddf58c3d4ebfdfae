ALTER TABLE orders SET UNLOGGED;

ALTER TABLE "JournalLine" SET LOGGED;

-- context: large=public.import_rows
ALTER TABLE public.import_rows SET LOGGED;
