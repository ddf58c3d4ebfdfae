-- AlterTable
ALTER TABLE "payees" ADD COLUMN "note" TEXT;

-- CreateIndex
CREATE INDEX "big_account_idx" ON "big"("account");
