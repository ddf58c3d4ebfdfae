-- A release's migration: harmless on a small table, an outage on a large one.
CREATE INDEX settings_value_idx ON settings (value);
UPDATE settings SET value = lower(value);
ALTER TABLE accounts ALTER COLUMN balance TYPE bigint;
