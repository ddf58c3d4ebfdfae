-- A sample migration through pgguard. Everything below travels through the
-- proxy; psql shows pgguard's notices and refusals as it would the server's.
SELECT current_user, version();
SHOW lock_timeout;  -- given by pgguard to every session

-- A ledger that is already big, as in production.
CREATE TABLE ledger (id bigserial PRIMARY KEY, account int NOT NULL, amount numeric(18,2) NOT NULL);
INSERT INTO ledger (account, amount) SELECT g % 1000, g FROM generate_series(1, 200000) g;
ANALYZE ledger;

-- Allowed: a nullable column without a default is instantaneous.
ALTER TABLE ledger ADD COLUMN fee_amount numeric(18,2);

-- Rewritten: CREATE INDEX would block writes for the whole build; pgguard
-- runs it CONCURRENTLY and says so.
CREATE INDEX ledger_account_idx ON ledger (account);
SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'ledger' ORDER BY 1;

-- Refused: a volatile default rewrites the whole table under ACCESS EXCLUSIVE.
ALTER TABLE ledger ADD COLUMN reference uuid DEFAULT gen_random_uuid();

-- Refused inside a transaction: CONCURRENTLY is impossible there, so the
-- transaction is aborted and COMMIT rolls back.
BEGIN;
ALTER TABLE ledger ADD COLUMN memo text;
CREATE INDEX ledger_amount_idx ON ledger (amount);
COMMIT;
SELECT count(*) AS memo_columns FROM information_schema.columns WHERE table_name = 'ledger' AND column_name = 'memo';
