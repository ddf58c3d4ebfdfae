-- context: in-transaction created=tmp_import
ALTER TABLE tmp_import RENAME TO import_rows;

ALTER TABLE orders RENAME COLUMN note TO memo;

ALTER INDEX orders_status_idx RENAME TO orders_state_idx;

ALTER VIEW order_totals RENAME TO order_sums;
