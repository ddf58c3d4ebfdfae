package policy

import (
	"context"
	"github.com/pgguard/pgguard/policy/sqltext"
	"testing"
)

func BenchmarkDecide(b *testing.B) {
	e, err := NewEngine(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, sql string }{
		{"select", `SELECT "id", "accountId", "amount" FROM "JournalLine" WHERE "accountId" = $1 ORDER BY "createdAt" DESC LIMIT 50`},
		{"insert", `INSERT INTO "JournalLine" ("id","accountId","amount","createdAt","updatedAt") VALUES (DEFAULT,$1,$2,$3,$4) RETURNING "id"`},
		{"update", `UPDATE "MyMoolahTransaction" SET "status"=$1,"updatedAt"=$2 WHERE "id" = $3`},
		{"alter_table", `ALTER TABLE "JournalLine" ADD COLUMN "fee_amount" DECIMAL(18,2) DEFAULT 0`},
		{"create_index", `CREATE INDEX "journal_line_account_id" ON "JournalLine" ("accountId")`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx, sc, stmt := context.Background(), &Context{Alone: true}, sqltext.Statement{Text: bc.sql}
			for b.Loop() {
				e.Decide(ctx, stmt, sc)
			}
		})
	}
}

func BenchmarkDecideUncached(b *testing.B) {
	e, err := NewEngine(nil)
	if err != nil {
		b.Fatal(err)
	}
	e.cache = nil // a parse per call: the cost of a statement seen for the first time
	b.ReportAllocs()
	ctx, sc := context.Background(), &Context{Alone: true}
	stmt := sqltext.Statement{Text: `ALTER TABLE "JournalLine" ADD COLUMN "fee_amount" DECIMAL(18,2) DEFAULT 0`}
	for b.Loop() {
		e.Decide(ctx, stmt, sc)
	}
}
