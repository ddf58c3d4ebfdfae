ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;

CREATE TABLE "Tag" (id bigint PRIMARY KEY, name text UNIQUE);

-- context: created=tags
ALTER TABLE tags ADD CONSTRAINT tags_name_key UNIQUE (name);

-- context: small=users
ALTER TABLE users ADD UNIQUE (email);

ALTER TABLE users ADD COLUMN nickname text;
