-- context: invalid-index=orders_status_idx
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_status_idx ON orders (status);

-- context: invalid-index=ledger."JournalLine_account_idx"
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "JournalLine_account_idx" ON ledger."JournalLine" ("accountId", "lineNo");
