package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// TestRedteamSessionOpenedBeforeBorrowing: environments.md says the
// borrowing settings take effect at a reload and "running sessions ask
// the new sources from then on". A session opened while uat judged with
// its own sizes (a migration runner's connection kept open, a pool's)
// keeps its own sizes for good after a SIGHUP applies sizes_from: its
// source was chosen when it started, and there was none. It allows the
// type change that production, and a session opened after the reload,
// refuse. The same holds for a session of a database that sizes_databases
// names only after the reload.
func TestRedteamSessionOpenedBeforeBorrowing(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	sizesDatabase(t, pg, "production", append(borrowSchema, borrowRows(30000)...)...)
	sizesDatabase(t, pg, "uat", append(borrowSchema, borrowRows(10)...)...)
	sizesDatabase(t, pg, "uat2", append(borrowSchema, borrowRows(10)...)...)
	t.Setenv("PGGUARD_TEST_MONITOR_PASSWORD", pgtest.Password)
	prod, uat, uat2, admin := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	head := fmt.Sprintf("proxy:\n  admin: %s\n  targets:\n"+
		"    - {name: production, listen: %s, upstream: %s, monitor: {user: %s, database: production, password_env: PGGUARD_TEST_MONITOR_PASSWORD}}\n",
		admin, prod, pg.Addr(), pgtest.SCRAMUser)
	write := func(uatLines string) {
		t.Helper()
		if err := os.WriteFile(rules, []byte(head+uatLines), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("    - {name: uat, listen: %s, upstream: %s}\n"+
		"    - {name: uat2, listen: %s, upstream: %s, sizes_from: production, sizes_databases: {uat: production}}\n", uat, pg.Addr(), uat2, pg.Addr()))
	bin := startBinary(t, "--rules", rules, "--log-format", "json")
	waitHTTP(t, "http://"+admin+"/startup", 200)
	dsn := func(addr, db string) string {
		return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, addr, db)
	}
	early := dialAgree(t, dsn(uat, "uat"))
	defer early.conn.Close(context.Background())
	early2 := dialAgree(t, dsn(uat2, "uat2")) // unmapped for now
	defer early2.conn.Close(context.Background())
	c := borrowCase{sql: "ALTER TABLE accounts ALTER COLUMN amount TYPE bigint", inTx: true}
	if v := verdictOf(t, early, c); v.action == policy.Reject {
		t.Fatalf("uat with its own 10 rows: %s, want allowed", v.key())
	}

	write(fmt.Sprintf("    - {name: uat, listen: %s, upstream: %s, sizes_from: production, sizes_refresh: 10s}\n"+
		"    - {name: uat2, listen: %s, upstream: %s, sizes_from: production, sizes_databases: {uat: production, uat2: production}}\n", uat, pg.Addr(), uat2, pg.Addr()))
	bin.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the SIGHUP reload", 10*time.Second, func() bool {
		return strings.Contains(bin.logText(), "borrowed sizes: settings applied")
	})
	waitUntil(t, "production's sizes read by uat", 20*time.Second, func() bool {
		return sum(scrape(t, admin), "pgguard_borrowed_sizes_in_use", "target", "uat") == 1
	})
	late := dialAgree(t, dsn(uat, "uat"))
	defer late.conn.Close(context.Background())
	if v := verdictOf(t, late, c); v.action != policy.Reject {
		t.Fatalf("a session opened after the reload: %s, want refused as production refuses", v.key())
	}
	if v := verdictOf(t, early, c); v.action != policy.Reject {
		t.Errorf("a session opened before sizes_from was applied, asked after: %s; production and a new session refuse", v.key())
	}
	if v := verdictOf(t, early2, c); v.action != policy.Reject {
		t.Errorf("a session of a database sizes_databases names only since the reload: %s; production refuses", v.key())
	}
}
