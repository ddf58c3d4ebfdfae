DROP TABLE orders;

DROP TABLE IF EXISTS "JournalLine", public.payments CASCADE;

DROP SCHEMA reporting CASCADE;

DROP DATABASE mymoolah_uat;

-- only the table that existed before the transaction
-- context: in-transaction created=tmp_import
DROP TABLE tmp_import, legacy_orders;
