-- Holds Flyway's advisory lock longer than pgguard's lock_timeout (3s).
SELECT pg_sleep(4);
