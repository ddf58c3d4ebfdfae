-- Holds Prisma's advisory lock until the test opens the gate (see together_test.go).
DO $$ BEGIN WHILE NOT EXISTS (SELECT FROM gate WHERE open) LOOP PERFORM pg_sleep(0.05); END LOOP; END $$;
CREATE TABLE "payees" ("id" BIGSERIAL NOT NULL, CONSTRAINT "payees_pkey" PRIMARY KEY ("id"));
