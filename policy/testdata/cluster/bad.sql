CLUSTER orders USING orders_created_at_idx;

CLUSTER "JournalLine" USING "JournalLine_pkey";

-- the index chosen earlier with ALTER TABLE ... CLUSTER ON
CLUSTER public.payments;

-- every table clustered before
CLUSTER;

-- context: in-transaction large=mymoolah_transactions
CLUSTER mymoolah_transactions USING mymoolah_transactions_pkey;
