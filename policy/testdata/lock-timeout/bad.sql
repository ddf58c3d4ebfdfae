SET lock_timeout = 0;

SET SESSION lock_timeout = '1min';

SET LOCAL lock_timeout TO '30s';

SET lock_timeout = 60000;

SELECT set_config('lock_timeout', '0', false);

SELECT pg_catalog.set_config('lock_timeout', $1, false);

UPDATE pg_settings SET setting = '0' WHERE name = 'lock_timeout';

SELECT set_config('lock_' || 'timeout', '0', false);
