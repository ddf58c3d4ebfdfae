SET lock_timeout = 0;

SET SESSION lock_timeout = '1min';

SET LOCAL lock_timeout TO '30s';

SET lock_timeout = 60000;

SELECT set_config('lock_timeout', '0', false);

SELECT pg_catalog.set_config('lock_timeout', $1, false);

UPDATE pg_settings SET setting = '0' WHERE name = 'lock_timeout';

SELECT set_config('lock_' || 'timeout', '0', false);

-- the function's SET clause applies whenever it runs
CREATE FUNCTION no_wait() RETURNS void LANGUAGE sql SET lock_timeout = 0 AS 'SELECT 1';

ALTER FUNCTION no_wait() SET "LOCK_TIMEOUT" = '1h';

ALTER ROLE app SET lock_timeout = 0;

-- a pattern may match lock_timeout
UPDATE pg_settings SET setting = '0' WHERE name LIKE 'lock_t%';

-- set_config finds settings whatever their case
SELECT set_config('LOCK_TIMEOUT', '0', false);

-- an assignment in a DO block
DO $$ DECLARE v text; BEGIN v := set_config('lock_timeout', '0', false); END $$;
