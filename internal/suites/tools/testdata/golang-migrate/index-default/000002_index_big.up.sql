-- golang-migrate sends a file as one query: alone in its file, the statement
-- runs outside a transaction and pgguard runs it CONCURRENTLY.
CREATE INDEX big_account_idx ON big (account);
