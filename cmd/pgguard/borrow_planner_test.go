package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// TestBorrowedEmptyTablePlannedInProduction: uat's accounts is empty, so
// no share of its rows says what a migration's UPDATE touches. Through
// pgguard, uat borrowing production's live sizes asks production's own
// planner (over the monitor connection), and decides as production does
// for a selective UPDATE (10 rows: allowed) and a wide one (5,000 rows
// over max_rows 1,000: refused); uat-file, with an export and no planner
// to ask, judges both as all of production's rows (refused), as
// docs/environments.md says.
func TestBorrowedEmptyTablePlannedInProduction(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	sizesDatabase(t, pg, "production", append(borrowSchema, borrowRows(30000)...)...)
	sizesDatabase(t, pg, "uat", append(borrowSchema, "ANALYZE")...)
	file := exportSizes(t, pg, "production")
	addrs, _ := threeEnvironments(t, pg, "large_dml: {max_rows: 1000}\n", pgtest.SCRAMUser, file)
	verdict := func(target, sql string) agreeVerdict {
		db := "uat"
		if target == "production" {
			db = "production"
		}
		s := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, addrs[target], db))
		defer s.conn.Close(context.Background())
		s.exec(t, "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS marker int") // DDL: a migration's session from here on
		return verdictOf(t, s, borrowCase{sql: sql, inTx: true})
	}
	for _, c := range []struct {
		sql      string
		refused  bool // by production
		fileSays bool // uat-file refuses
	}{
		{"UPDATE accounts SET note = 'x' WHERE id <= 10", false, true},
		{"UPDATE accounts SET note = 'x' WHERE id <= 5000", true, true},
	} {
		p := verdict("production", c.sql)
		if (p.action == policy.Reject) != c.refused {
			t.Fatalf("%s on production: %s", c.sql, p.key())
		}
		if u := verdict("uat", c.sql); u.key() != p.key() {
			t.Errorf("%s: uat (empty table, production's planner) decides %s, production %s", c.sql, u.key(), p.key())
		}
		if f := verdict("uat-file", c.sql); (f.action == policy.Reject) != c.fileSays {
			t.Errorf("%s: uat-file decides %s", c.sql, f.key())
		}
	}
}

// threeEnvironments starts pgguard with three targets in front of pg:
// production (with a monitor: block for user), uat borrowing production's
// live sizes, and uat-file judging with the sizes file; settings go before
// the proxy section. It returns the targets' addresses and the admin
// address once uat has read production's sizes.
func threeEnvironments(t *testing.T, pg *pgtest.Server, settings, user, file string) (map[string]string, string) {
	t.Helper()
	t.Setenv("PGGUARD_TEST_MONITOR_PASSWORD", pgtest.Password)
	addrs := map[string]string{"production": freeAddr(t), "uat": freeAddr(t), "uat-file": freeAddr(t)}
	admin := freeAddr(t)
	cfg := fmt.Sprintf(settings+"proxy:\n  admin: %s\n  targets:\n"+
		"    - {name: production, listen: %s, upstream: %s, monitor: {user: %s, database: production, password_env: PGGUARD_TEST_MONITOR_PASSWORD}}\n"+
		"    - {name: uat, listen: %s, upstream: %s, sizes_from: production, sizes_refresh: 10s}\n"+
		"    - {name: uat-file, listen: %s, upstream: %s, sizes_file: %s}\n",
		admin, addrs["production"], pg.Addr(), user, addrs["uat"], pg.Addr(), addrs["uat-file"], pg.Addr(), file)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	startBinary(t, "--rules", rules, "--log-format", "json")
	waitHTTP(t, "http://"+admin+"/startup", 200)
	waitUntil(t, "production's sizes read by uat", 20*time.Second, func() bool {
		return sum(scrape(t, admin), "pgguard_borrowed_sizes_in_use", "target", "uat") == 1
	})
	return addrs, admin
}
