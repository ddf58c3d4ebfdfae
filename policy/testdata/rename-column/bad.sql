ALTER TABLE orders RENAME COLUMN note TO memo;

-- context: column-type="JournalLine".amount:numeric(18,2)
ALTER TABLE "JournalLine" RENAME COLUMN amount TO "amountCents";
