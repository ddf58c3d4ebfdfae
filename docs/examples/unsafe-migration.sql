-- A migration pgguard refuses: a volatile default rewrites the whole table
-- under ACCESS EXCLUSIVE, and a rename breaks the running code.
ALTER TABLE accounts ADD COLUMN reference uuid DEFAULT gen_random_uuid();
ALTER TABLE accounts RENAME COLUMN email TO email_address;
