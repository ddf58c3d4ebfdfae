-- Run without ON_ERROR_STOP: psql goes on after each error.
SELECT 'a1';
ALTER TABLE big ALTER COLUMN account TYPE bigint;
SELECT 'a2';
BEGIN;
CREATE INDEX big_in_tx2 ON big (note);
SELECT 'in the aborted transaction';
COMMIT;
SELECT 'a3'; SELECT 'a4';
-- \; joins them into one Query: the refusal must stop the INSERT too.
INSERT INTO small VALUES (500, 'multi') \; ALTER TABLE big ALTER COLUMN account TYPE bigint;
SELECT count(*) FROM small WHERE id = 500;
PREPARE s2 (text) AS SELECT $1 || '!';
EXECUTE s2 ('a5');
EXECUTE s2 ('a6');
SELECT g FROM generate_series(1, 4) g;
