SET lock_timeout = '2s';

SET LOCAL lock_timeout TO 500;

SET lock_timeout = '10s';

RESET lock_timeout;

SET lock_timeout TO DEFAULT;

SELECT set_config('lock_timeout', '1s', true);

SET statement_timeout = 0;

UPDATE pg_settings SET setting = '0' WHERE name = 'statement_timeout';

SELECT set_config('app.tenant_id', '42', true);

UPDATE pg_settings SET setting = '2s' WHERE name = 'lock_timeout';

CREATE FUNCTION short_wait() RETURNS void LANGUAGE sql SET lock_timeout = '2s' AS 'SELECT 1';

ALTER ROLE app SET statement_timeout = 0;

UPDATE pg_settings SET setting = '0' WHERE name IN ('statement_timeout', 'idle_in_transaction_session_timeout');
