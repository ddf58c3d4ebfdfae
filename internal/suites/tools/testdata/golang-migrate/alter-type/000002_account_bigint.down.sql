ALTER TABLE big ALTER COLUMN account TYPE integer;
