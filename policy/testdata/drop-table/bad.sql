DROP TABLE orders;

DROP TABLE IF EXISTS "JournalLine", public.payments CASCADE;

DROP SCHEMA reporting CASCADE;

DROP DATABASE mymoolah_uat;

-- only the table that existed before the transaction
-- context: in-transaction created=tmp_import
DROP TABLE tmp_import, legacy_orders;

-- created in this transaction in another schema: the search_path finds public.accounts
-- context: in-transaction created=other.accounts resolves=accounts:public
DROP TABLE accounts;

-- without a catalog, an unqualified name is public's, not another schema's
-- context: in-transaction created=other.accounts
DROP TABLE accounts;

-- the table exists and is not temporary
-- context: resolves=accounts:public
DROP TABLE IF EXISTS accounts
