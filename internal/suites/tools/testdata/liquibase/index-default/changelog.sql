--liquibase formatted sql

--changeset app:create_payees
CREATE TABLE payees (id bigserial PRIMARY KEY, name text NOT NULL);

-- Liquibase's default: the changeset runs in a transaction.
--changeset app:index_big
CREATE INDEX big_account_idx ON big (account);
