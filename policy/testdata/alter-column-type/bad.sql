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
;

-- an enum column changed to another enum: the labels belong in the column's enum
-- context: column-type=orders.status:order_status enum=order_status tool=sequelize
ALTER TABLE orders ALTER COLUMN status TYPE order_status_v2 USING status::text::order_status_v2;

-- sequelize's changeColumn of an ENUM column without a catalog
ALTER TABLE "Orders" ALTER COLUMN "status" TYPE "enum_Orders_status" USING ("status"::"public"."enum_Orders_status");

-- a cast of the column to another type is no same-type change
-- context: column-type=orders.note:varchar(100)
ALTER TABLE orders ALTER COLUMN note TYPE varchar(100) USING note::varchar(50)
