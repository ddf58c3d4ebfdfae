-- CreateTable
CREATE TABLE "payees" (
    "id" BIGSERIAL NOT NULL,
    "name" TEXT NOT NULL,

    CONSTRAINT "payees_pkey" PRIMARY KEY ("id")
);

-- AlterTable
ALTER TABLE "big" ADD COLUMN "nickname" TEXT;

-- CreateIndex
CREATE INDEX "small_v_idx" ON "small"("v");
