SET lock_timeout = '2s';

SET LOCAL lock_timeout TO 500;

SET lock_timeout = '10s';

RESET lock_timeout;

SET lock_timeout TO DEFAULT;

SELECT set_config('lock_timeout', '1s', true);

SET statement_timeout = 0;
