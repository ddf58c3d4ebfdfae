package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestRedteamBorrowedBatchesWithParameters: the same batches as
// TestRedteamBorrowedKeyedBatches and the recipe's, sent as ORMs send them
// (the extended protocol, the LIMIT and the range bounds as parameters:
// TypeORM's and Sequelize's query builders, Rails' binds, pgjdbc's
// PreparedStatement). pgguard judges a migration's statement with its
// bound values substituted as literals ('1000'), which the bound of a
// batch did not read as numbers: production allows each, UAT refused
// them as all of production's 300,000 rows.
func TestRedteamBorrowedBatchesWithParameters(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	sizesDatabase(t, pg, "production", append(borrowSchema, borrowRows(300000)...)...)
	sizesDatabase(t, pg, "uat", append(borrowSchema, borrowRows(10)...)...)
	file := exportSizes(t, pg, "production")
	addrs, _ := threeEnvironments(t, pg, "", pgtest.SCRAMUser, file)
	for _, c := range []struct {
		sql    string
		params []string
	}{
		{`UPDATE "accounts" SET "note" = $1 WHERE "accounts"."id" IN (SELECT "accounts"."id" FROM "accounts" WHERE "accounts"."note" IS NULL ORDER BY "accounts"."id" LIMIT $2)`, []string{"x", "1000"}},
		{`UPDATE "accounts" SET "note" = $1 WHERE "id" >= $2 AND "id" < $3`, []string{"x", "1", "10001"}},
		{`UPDATE "accounts" SET "note" = $1 WHERE "accounts"."ctid" = ANY (ARRAY(SELECT "accounts"."ctid" FROM "accounts" WHERE "accounts"."note" IS NULL LIMIT $2))`, []string{"x", "10000"}},
	} {
		got := map[string]string{}
		for _, name := range []string{"production", "uat", "uat-file"} {
			db := "uat"
			if name == "production" {
				db = "production"
			}
			s := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, addrs[name], db))
			s.exec(t, "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS marker int") // DDL: a migration's session from here on
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			s.must(t, "BEGIN")
			p := make([][]byte, len(c.params))
			for i, v := range c.params {
				p[i] = []byte(v)
			}
			got[name] = "allowed"
			if err := s.conn.ExecParams(ctx, c.sql, p, nil, nil, nil).Read().Err; err != nil {
				got[name] = err.Error()
			}
			s.conn.Exec(ctx, "ROLLBACK").ReadAll()
			cancel()
			s.conn.Close(context.Background())
		}
		if got["production"] != "allowed" {
			t.Fatalf("%s: production: %s, want allowed", c.sql, got["production"])
		}
		for _, name := range []string{"uat", "uat-file"} {
			if got[name] != "allowed" {
				t.Errorf("%s\n  %s: %s; production allows it", c.sql, name, got[name])
			}
		}
	}
}
