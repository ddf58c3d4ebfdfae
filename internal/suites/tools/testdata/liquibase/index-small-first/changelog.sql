--liquibase formatted sql

--changeset app:create_payees
CREATE TABLE payees (id bigserial PRIMARY KEY, name text NOT NULL);

-- The first statement of its transaction: pgjdbc sends BEGIN with it.
--changeset app:index_small
CREATE INDEX small_v_idx ON small (v);
