-- With other statements in the file, the query is one implicit transaction.
ALTER TABLE payees ADD COLUMN note text;
CREATE INDEX big_account_idx ON big (account);
