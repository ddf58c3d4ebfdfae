CREATE UNLOGGED TABLE import_rows (id bigint, payload text);

-- context: in-transaction created=import_rows
ALTER TABLE import_rows SET LOGGED;

-- context: small=countries
ALTER TABLE countries SET UNLOGGED;

ALTER TABLE orders SET (fillfactor = 90);
