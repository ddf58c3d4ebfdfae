-- context: column-type=orders.status:char(20)
ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'new';

-- context: column-type=orders.note:varchar(100)
ALTER TABLE orders ALTER COLUMN note TYPE varchar(200);

-- context: column-type=orders.note:varchar(100)
ALTER TABLE orders ALTER COLUMN note TYPE text;

-- context: column-type=orders.total:numeric(10,2)
ALTER TABLE orders ALTER COLUMN total TYPE numeric(14,2);

-- context: column-type="JournalLine".amount:numeric(18,2)
ALTER TABLE "JournalLine" ALTER COLUMN "amount" TYPE numeric;

-- context: created=refunds
ALTER TABLE refunds ALTER COLUMN amount TYPE bigint;

-- context: small=orders
ALTER TABLE orders ALTER COLUMN customer_id TYPE bigint;
;

-- sequelize's changeColumn of an ENUM column: to the column's own type, which rewrites nothing
-- context: column-type="Orders".status:"enum_Orders_status"
ALTER TABLE "Orders" ALTER COLUMN "status" TYPE "enum_Orders_status" USING ("status"::"public"."enum_Orders_status");

-- the same type, written another way
-- context: column-type=orders.note:varchar(100)
ALTER TABLE orders ALTER COLUMN note TYPE varchar(100) USING note::varchar(100)
