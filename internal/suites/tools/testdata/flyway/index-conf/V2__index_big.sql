-- Run without a transaction (V2__index_big.sql.conf): alone in its query,
-- pgguard runs it CONCURRENTLY.
CREATE INDEX big_account_idx ON big (account);
