DROP INDEX IF EXISTS big_account_idx;
