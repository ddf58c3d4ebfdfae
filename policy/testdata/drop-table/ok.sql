-- context: in-transaction created=tmp_import
DROP TABLE tmp_import;

DROP VIEW order_totals;

DROP INDEX CONCURRENTLY orders_status_idx;

DROP SEQUENCE orders_legacy_seq;

-- PostgreSQL does nothing (a NOTICE): the catalog says there is no such table
-- context: missing=missing_table
DROP TABLE IF EXISTS missing_table;

-- without IF EXISTS the server itself answers 42P01
-- context: missing=missing_table
DROP TABLE missing_table;

-- a temporary table, created earlier in the session: nobody else's
-- context: temp=scratch
DROP TABLE scratch;

-- a name in the temporary schema is a temporary table
DROP TABLE pg_temp.scratch;
DROP TABLE pg_temp_4.scratch;

-- created temporary in this transaction: an unqualified name finds it first
-- context: in-transaction created=pg_temp.accounts
DROP TABLE accounts;

-- created in this transaction in the schema the search_path finds first
-- context: in-transaction created=app.accounts resolves=accounts:app
DROP TABLE accounts
