-- What prisma migrate deploy sends before the migrations (Prisma 5): its
-- advisory lock, and its ledger.
SELECT pg_advisory_lock(72707369);
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL,
    "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
);
SELECT "id", "checksum", "finished_at", "migration_name" FROM "_prisma_migrations" ORDER BY "started_at" ASC;
