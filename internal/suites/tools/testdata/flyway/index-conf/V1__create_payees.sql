CREATE TABLE payees (id bigserial PRIMARY KEY, name text NOT NULL);
