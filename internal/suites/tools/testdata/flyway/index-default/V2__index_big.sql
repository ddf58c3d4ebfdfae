-- Flyway's default: the migration runs in a transaction.
CREATE INDEX big_account_idx ON big (account);
