--liquibase formatted sql

-- Holds the changelog lock longer than pgguard's lock_timeout (3s).
--changeset app:slow
SELECT pg_sleep(4);

--changeset app:create_payees
CREATE TABLE payees (id bigserial PRIMARY KEY, name text NOT NULL);
