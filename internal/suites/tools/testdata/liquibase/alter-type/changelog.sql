--liquibase formatted sql

--changeset app:create_payees
CREATE TABLE payees (id bigserial PRIMARY KEY, name text NOT NULL);

--changeset app:account_bigint
ALTER TABLE big ALTER COLUMN account TYPE bigint;
