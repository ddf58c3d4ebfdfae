-- A psql session through pgguard. Everything below travels through the proxy.
SELECT current_user, version();
CREATE TABLE ledger (id bigserial PRIMARY KEY, account int NOT NULL, amount numeric(18,2) NOT NULL);
INSERT INTO ledger (account, amount) SELECT g % 1000, g FROM generate_series(1, 200000) g;
ANALYZE ledger;
SELECT count(*), sum(amount) FROM ledger;
BEGIN;
UPDATE ledger SET amount = amount + 1 WHERE id = 1;
COMMIT;
