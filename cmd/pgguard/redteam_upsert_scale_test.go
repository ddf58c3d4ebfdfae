package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// TestRedteamBorrowedUpsertFromJoinedTable: a backfill written as an
// upsert (INSERT ... SELECT ... ON CONFLICT DO UPDATE, what a data
// migration of Django's RunSQL, Rails' execute, knex.raw or Prisma's
// migration.sql writes to fill a table from another) is sized by the rows
// of its SELECT. Borrowed scaled UAT's estimate by the first table of the
// SELECT's FROM only: when that first relation is a small table (settings,
// 5 rows everywhere), a WITH query's name (not a table at all) or the
// SELECT is a UNION (no FROM at its top), the 300,000 rows of accounts it
// reads in production were judged as UAT's 10: production refuses each,
// uat (live sizes) and uat-file (an export) let it through.
func TestRedteamBorrowedUpsertFromJoinedTable(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	sizesDatabase(t, pg, "production", append(borrowSchema, borrowRows(300000)...)...)
	sizesDatabase(t, pg, "uat", append(borrowSchema, borrowRows(10)...)...)
	file := exportSizes(t, pg, "production")
	addrs, _ := threeEnvironments(t, pg, "", pgtest.SCRAMUser, file)
	sessions := map[string]*agreeSession{}
	for name, addr := range addrs {
		db := "uat"
		if name == "production" {
			db = "production"
		}
		s := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, addr, db))
		defer s.conn.Close(context.Background())
		s.exec(t, "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS marker int") // DDL: a migration's session from here on
		sessions[name] = s
	}
	for _, sql := range []string{
		// the first table of FROM is a small one
		"INSERT INTO orders (id, account_id, total) SELECT a.id, a.id, 0 FROM settings s JOIN accounts a ON s.k = 'k1' ON CONFLICT (id) DO UPDATE SET total = EXCLUDED.total",
		"INSERT INTO orders (id, account_id, total) SELECT a.id, a.id, 0 FROM settings s, accounts a WHERE s.k = 'k1' ON CONFLICT (id) DO UPDATE SET total = EXCLUDED.total",
		// the rows come through a WITH query
		"WITH src AS (SELECT id FROM accounts) INSERT INTO orders (id, account_id, total) SELECT id, id, 0 FROM src ON CONFLICT (id) DO UPDATE SET total = 0",
		"INSERT INTO orders (id, account_id, total) WITH src AS (SELECT id FROM accounts) SELECT id, id, 0 FROM src ON CONFLICT (id) DO UPDATE SET total = 0",
		// a UNION of a big and a small SELECT
		"INSERT INTO orders (id, account_id, total) SELECT id, id, 0 FROM accounts UNION ALL SELECT 0, 0, 0 FROM settings ON CONFLICT (id) DO UPDATE SET total = 0",
	} {
		c := borrowCase{sql: sql, inTx: true}
		prod := verdictOf(t, sessions["production"], c)
		if prod.action != policy.Reject {
			t.Fatalf("%s: production (300,000 rows of accounts) decides %s, want refused", sql, prod.key())
		}
		for _, name := range []string{"uat", "uat-file"} {
			if got := verdictOf(t, sessions[name], c); got.key() != prod.key() {
				t.Errorf("%s\n  %s decides %s, production %s", sql, name, got.key(), prod.key())
			}
		}
	}
}
