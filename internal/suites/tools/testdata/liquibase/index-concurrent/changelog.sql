--liquibase formatted sql

--changeset app:create_payees
CREATE TABLE payees (id bigserial PRIMARY KEY, name text NOT NULL);

-- Liquibase's way to run a statement outside a transaction.
--changeset app:index_big_concurrently runInTransaction:false
CREATE INDEX CONCURRENTLY big_account_cidx ON big (account);
