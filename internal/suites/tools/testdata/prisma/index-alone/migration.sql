-- CreateIndex
CREATE INDEX "big_account_idx" ON "big"("account");
