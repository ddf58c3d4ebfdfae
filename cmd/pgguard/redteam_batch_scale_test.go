package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// TestRedteamBorrowedBatchOfTheRecipe: large-dml's fix (and the backfill
// step of alter-column-type's, add-column-volatile-default's,
// add-column-not-null-without-default's recipes) is a batch that changes
// at most 10,000 rows: UPDATE t SET ... WHERE t.ctid = ANY (ARRAY(SELECT
// t.ctid FROM t WHERE ... LIMIT 10000)), repeated (a DO loop, Django's
// RunPython loop, Rails' loop { execute ... }). Production allows it. In a
// 10-row UAT judged with production's sizes every batch touches all 10
// rows, and the share (all of them) was scaled to production's 300,000:
// the fix pgguard gives was refused in UAT ("UPDATE of about 300000
// rows"), so no tool could run it there.
func TestRedteamBorrowedBatchOfTheRecipe(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	sizesDatabase(t, pg, "production", append(borrowSchema, borrowRows(300000)...)...)
	sizesDatabase(t, pg, "uat", append(borrowSchema, borrowRows(10)...)...)
	file := exportSizes(t, pg, "production")
	addrs, _ := threeEnvironments(t, pg, "", pgtest.SCRAMUser, file)
	const batch = "UPDATE accounts SET note = 'n' WHERE accounts.ctid = ANY (ARRAY(SELECT accounts.ctid FROM accounts WHERE note IS DISTINCT FROM 'n' LIMIT 10000))"
	for _, c := range []borrowCase{
		{sql: batch},
		{sql: batch, inTx: true},
		{sql: "DO $$ BEGIN LOOP " + batch + "; EXIT WHEN NOT FOUND; COMMIT; END LOOP; END $$"},
		{sql: "DELETE FROM ledger WHERE ctid IN (SELECT ctid FROM ledger WHERE amount < 0 LIMIT 10000)"},
	} {
		got := map[string]agreeVerdict{}
		for _, name := range []string{"production", "uat", "uat-file"} {
			db := "uat"
			if name == "production" {
				db = "production"
			}
			s := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, addrs[name], db))
			s.exec(t, "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS marker int") // DDL: a migration's session from here on
			got[name] = verdictOf(t, s, c)
			s.conn.Close(context.Background())
			// The batch may have run: put the rows back as they were.
			pg.ExecAs(pgtest.SCRAMUser, db, "UPDATE accounts SET note = NULL WHERE note IS NOT NULL")
		}
		if got["production"].action != policy.Allow {
			t.Fatalf("%s: production %s, want allowed (a batch of at most 10,000 rows)", c.sql, got["production"].key())
		}
		for _, name := range []string{"uat", "uat-file"} {
			if got[name].key() != got["production"].key() {
				t.Errorf("%s (in a transaction: %v)\n  %s decides %s, production %s\n%s", c.sql, c.inTx, name, got[name].key(), got["production"].key(),
					strings.TrimSpace(got[name].details()))
			}
		}
	}
}

// TestRedteamBorrowedKeyedBatches: the batches the tools' own idioms write
// by the primary key, each of at most a few thousand rows: a subquery
// with LIMIT (knex's, TypeORM's, Django's hand-written batch loops), an
// array of ids (Rails' update_all over ids plucked first, node-pg-migrate's
// pgm.sql with = ANY), an id range (in_batches' ranges, BETWEEN batches).
// Production allows each; in a 10-row UAT every batch covers all 10 rows,
// whose share was scaled to production's 300,000 and refused.
func TestRedteamBorrowedKeyedBatches(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	sizesDatabase(t, pg, "production", append(borrowSchema, borrowRows(300000)...)...)
	sizesDatabase(t, pg, "uat", append(borrowSchema, borrowRows(10)...)...)
	file := exportSizes(t, pg, "production")
	addrs, _ := threeEnvironments(t, pg, "", pgtest.SCRAMUser, file)
	ids := make([]string, 2000)
	for i := range ids {
		ids[i] = fmt.Sprint(i + 1)
	}
	sessions := map[string]*agreeSession{}
	for _, name := range []string{"production", "uat", "uat-file"} {
		db := "uat"
		if name == "production" {
			db = "production"
		}
		s := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, addrs[name], db))
		defer s.conn.Close(context.Background())
		s.exec(t, "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS marker int") // DDL: a migration's session from here on
		sessions[name] = s
	}
	for _, sql := range []string{
		"UPDATE accounts SET note = 'x' WHERE id IN (SELECT id FROM accounts WHERE note IS NULL ORDER BY id LIMIT 1000)",
		"DELETE FROM orders WHERE id IN (SELECT id FROM orders ORDER BY id LIMIT 5000)",
		"UPDATE accounts SET note = 'x' WHERE id = ANY (ARRAY(SELECT id FROM accounts WHERE note IS NULL LIMIT 1000))",
		"UPDATE accounts SET note = 'x' WHERE id = ANY ('{" + strings.Join(ids, ",") + "}'::bigint[])",
		"UPDATE accounts SET note = 'x' WHERE id = ANY (ARRAY[" + strings.Join(ids, ",") + "])",
		"UPDATE accounts SET note = 'x' WHERE id >= 1 AND id < 10001",
		"UPDATE accounts SET note = 'x' WHERE id BETWEEN 1 AND 1000 AND note IS NULL",
	} {
		c := borrowCase{sql: sql, inTx: true}
		prod := verdictOf(t, sessions["production"], c)
		if prod.action != policy.Allow {
			t.Fatalf("%.120s: production %s, want allowed", sql, prod.key())
		}
		for _, name := range []string{"uat", "uat-file"} {
			if got := verdictOf(t, sessions[name], c); got.key() != prod.key() {
				t.Errorf("%.120s\n  %s decides %s, production %s", sql, name, got.key(), prod.key())
			}
		}
	}
	// A column that is no unique key bounds nothing: amount IN (1,000
	// values) matches every row of production's accounts (amount is id %
	// 1000), refused there and in UAT.
	for _, sql := range []string{
		"UPDATE accounts SET note = 'x' WHERE amount IN (SELECT amount FROM accounts LIMIT 1000)",
		"UPDATE accounts SET note = 'x' WHERE amount BETWEEN 0 AND 999",
	} {
		c := borrowCase{sql: sql, inTx: true}
		prod := verdictOf(t, sessions["production"], c)
		if prod.action != policy.Reject {
			t.Fatalf("%.120s: production %s, want refused", sql, prod.key())
		}
		for _, name := range []string{"uat", "uat-file"} {
			if got := verdictOf(t, sessions[name], c); got.key() != prod.key() {
				t.Errorf("%.120s\n  %s decides %s, production %s", sql, name, got.key(), prod.key())
			}
		}
	}
}

// TestRedteamBorrowedBatchOfPartitionedTable: the recipe's ctid batch on a
// partitioned table (events: one partition of 300,000 rows in production,
// 10 in UAT). A ctid names one row of each leaf partition, so the batch
// changes at most LIMIT rows per partition; production allows it, UAT
// scaled its 10 rows to production's 300,000 and refused it.
func TestRedteamBorrowedBatchOfPartitionedTable(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	sizesDatabase(t, pg, "production", append(borrowSchema, borrowRows(300000)...)...)
	sizesDatabase(t, pg, "uat", append(borrowSchema, borrowRows(10)...)...)
	file := exportSizes(t, pg, "production")
	addrs, _ := threeEnvironments(t, pg, "", pgtest.SCRAMUser, file)
	c := borrowCase{sql: "UPDATE events SET n = 0 WHERE ctid = ANY (ARRAY(SELECT ctid FROM events WHERE n <> 0 LIMIT 10000))", inTx: true}
	got := map[string]agreeVerdict{}
	for _, name := range []string{"production", "uat", "uat-file"} {
		db := "uat"
		if name == "production" {
			db = "production"
		}
		s := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, addrs[name], db))
		s.exec(t, "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS marker int") // DDL: a migration's session from here on
		got[name] = verdictOf(t, s, c)
		s.conn.Close(context.Background())
	}
	if got["production"].action != policy.Allow {
		t.Fatalf("production %s, want allowed (10,000 rows of its one partition)", got["production"].key())
	}
	for _, name := range []string{"uat", "uat-file"} {
		if got[name].key() != got["production"].key() {
			t.Errorf("%s decides %s, production %s", name, got[name].key(), got["production"].key())
		}
	}
}
