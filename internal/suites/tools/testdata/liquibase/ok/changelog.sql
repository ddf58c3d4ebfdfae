--liquibase formatted sql

--changeset app:create_payees
CREATE TABLE payees (id bigserial PRIMARY KEY, name text NOT NULL);

--changeset app:add_nickname
ALTER TABLE big ADD COLUMN nickname text;

--changeset app:index_small
ALTER TABLE small ADD COLUMN label text;
CREATE INDEX small_v_idx ON small (v);
