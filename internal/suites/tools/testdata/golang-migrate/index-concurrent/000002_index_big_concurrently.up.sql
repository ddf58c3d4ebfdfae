CREATE INDEX CONCURRENTLY big_account_cidx ON big (account);
