-- context: in-transaction created=tmp_import
DROP TABLE tmp_import;

DROP VIEW order_totals;

DROP INDEX CONCURRENTLY orders_status_idx;

DROP SEQUENCE orders_legacy_seq;
