ALTER TABLE orders ALTER COLUMN customer_id TYPE bigint;

ALTER TABLE "JournalLine" ALTER COLUMN "amount" TYPE numeric(20,4) USING "amount"::numeric(20,4);

-- context: column-type=orders.total:numeric(10,2)
ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,3);

-- context: column-type=orders.status:text
ALTER TABLE orders ALTER COLUMN status SET DATA TYPE varchar(20);

-- context: column-type="JournalLine".postedAt:timestamp
ALTER TABLE "JournalLine" ALTER COLUMN "postedAt" TYPE timestamptz;

-- context: pg=11 column-type=orders.created_at:timestamp
ALTER TABLE orders ALTER COLUMN created_at TYPE timestamptz;

-- a DO block inside a DO block
DO $$ BEGIN DO $i$ BEGIN ALTER TABLE big ALTER COLUMN a TYPE bigint; END $i$; END $$;

-- a LANGUAGE sql function's body, judged when the function is created
CREATE FUNCTION widen() RETURNS void LANGUAGE sql AS 'ALTER TABLE big ALTER COLUMN a TYPE bigint';

-- a procedure's body, called later with CALL
CREATE PROCEDURE widen_p() LANGUAGE sql AS $body$ SELECT 1; ALTER TABLE big ALTER COLUMN a TYPE bigint $body$;

-- a PL/pgSQL function that CALLs in a nested DO block
CREATE FUNCTION on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN IF true THEN DO $d$ BEGIN ALTER TABLE big ALTER COLUMN a TYPE bigint; END $d$; END IF; END $$;
