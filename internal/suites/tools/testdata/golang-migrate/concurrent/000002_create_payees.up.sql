CREATE TABLE IF NOT EXISTS payees (id bigserial PRIMARY KEY, name text NOT NULL);
