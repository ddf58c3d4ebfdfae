package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// TestRedteamIndexOnOnlyPartitionedParent: production's measurements is
// partitioned (300,000 rows in its partition), UAT's a plain table of 10
// rows. CREATE INDEX ... ON ONLY measurements is the first step of the fix
// pgguard itself gives for indexing a partitioned table ("create the index
// ON ONLY the parent, then CREATE INDEX CONCURRENTLY on each partition
// ... ATTACH PARTITION"): on a partitioned table it builds nothing (the
// parent's index is created invalid, no partition is read), so it is
// instant. pgguard refused it in production (and so, borrowing
// production's sizes, in UAT) as a SHARE lock held "until the whole index
// is built": the recipe could not be followed, in any environment.
func TestRedteamIndexOnOnlyPartitionedParent(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	rows := func(n int, partitioned bool) []string {
		out := []string{"CREATE TABLE measurements (at date NOT NULL, n int)"}
		if partitioned {
			out = []string{"CREATE TABLE measurements (at date NOT NULL, n int) PARTITION BY RANGE (at)",
				"CREATE TABLE measurements_2026 PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')"}
		}
		return append(out, fmt.Sprintf("INSERT INTO measurements SELECT date '2026-01-01' + (g %% 365), g FROM generate_series(1, %d) g", n),
			"SELECT pg_catalog.pg_stat_force_next_flush()", "VACUUM ANALYZE")
	}
	sizesDatabase(t, pg, "production", rows(300000, true)...)
	sizesDatabase(t, pg, "uat", rows(10, false)...)
	file := exportSizes(t, pg, "production")
	addrs, _ := threeEnvironments(t, pg, "", pgtest.SCRAMUser, file)
	for _, name := range []string{"production", "uat", "uat-file"} {
		db := "uat"
		if name == "production" {
			db = "production"
		}
		s := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, addrs[name], db))
		// The whole index, on every partition: refused everywhere.
		if v := verdictOf(t, s, borrowCase{sql: "CREATE INDEX measurements_n ON measurements (n)"}); v.action != policy.Reject {
			t.Errorf("%s: CREATE INDEX on the partitioned table: %s, want refused", name, v.key())
		}
		pg.ExecAs(pgtest.SCRAMUser, db, "DROP INDEX IF EXISTS measurements_n")
		// The parent's index alone, as the fix says.
		for _, inTx := range []bool{false, true} {
			v := verdictOf(t, s, borrowCase{sql: "CREATE INDEX measurements_n ON ONLY measurements (n)", inTx: inTx})
			if v.action != policy.Allow {
				t.Errorf("%s (in a transaction: %v): CREATE INDEX ... ON ONLY the partitioned parent (the fix's first step, instant): %s\n%s",
					name, inTx, v.key(), strings.TrimSpace(v.details()))
			}
			pg.ExecAs(pgtest.SCRAMUser, db, "DROP INDEX IF EXISTS measurements_n")
		}
		s.conn.Close(context.Background())
	}
}
