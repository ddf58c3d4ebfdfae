-- Flyway runs a script of CREATE INDEX CONCURRENTLY outside a transaction by itself.
CREATE INDEX CONCURRENTLY big_account_cidx ON big (account);
