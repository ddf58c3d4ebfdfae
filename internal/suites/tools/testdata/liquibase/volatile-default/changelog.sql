--liquibase formatted sql

--changeset app:create_payees
CREATE TABLE payees (id bigserial PRIMARY KEY, name text NOT NULL);

--changeset app:add_ref
ALTER TABLE big ADD COLUMN ref uuid DEFAULT gen_random_uuid();
