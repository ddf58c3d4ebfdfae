-- A migration pgguard lets through: every statement is safe on a large table.
ALTER TABLE accounts ADD COLUMN nickname text;
CREATE INDEX CONCURRENTLY accounts_nickname_idx ON accounts (nickname);
ALTER TABLE accounts ADD CONSTRAINT accounts_nickname_len CHECK (length(nickname) < 64) NOT VALID;
