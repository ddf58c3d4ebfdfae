package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// TestRedteamMonitorPasswordFileRotated: the monitor role's password is
// rotated the way a password_file exists for (the secret manager writes
// the new one into the mounted file, then changes the role). pgguard read
// the file once at startup and keeps dialling with the old password:
// every refresh fails, and three refreshes later uat is judged with its
// own sizes although the file it was told to read holds the right
// password.
func TestRedteamMonitorPasswordFileRotated(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	sizesDatabase(t, pg, "production", borrowSchema...)
	sizesDatabase(t, pg, "uat", borrowSchema...)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "monitor-password")
	if err := os.WriteFile(pwFile, []byte(pgtest.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Exec("ALTER ROLE " + pgtest.SCRAMUser + " PASSWORD '" + pgtest.Password + "'") })
	uat, admin := freeAddr(t), freeAddr(t)
	rules := filepath.Join(dir, "rules.yaml")
	cfg := fmt.Sprintf("proxy:\n  admin: %s\n  targets:\n"+
		"    - {name: production, listen: %s, upstream: %s, monitor: {user: %s, database: production, password_file: %s}}\n"+
		"    - {name: uat, listen: %s, upstream: %s, sizes_from: production, sizes_refresh: 10s}\n",
		admin, freeAddr(t), pg.Addr(), pgtest.SCRAMUser, pwFile, uat, pg.Addr())
	if err := os.WriteFile(rules, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := startBinary(t, "--rules", rules, "--log-format", "json")
	waitHTTP(t, "http://"+admin+"/startup", 200)
	waitUntil(t, "production's sizes read by uat", 20*time.Second, func() bool {
		return sum(scrape(t, admin), "pgguard_borrowed_sizes_in_use", "target", "uat") == 1
	})
	// Rotate: the new password in the file, then on the role.
	const rotated = "rotated-Pa55word"
	if err := os.WriteFile(pwFile+".new", []byte(rotated+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(pwFile+".new", pwFile); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec("ALTER ROLE " + pgtest.SCRAMUser + " PASSWORD '" + rotated + "'"); err != nil {
		t.Fatal(err)
	}
	// Two refreshes later.
	time.Sleep(22 * time.Second)
	failures := sum(scrape(t, admin), "pgguard_borrowed_sizes_unreachable_total", "target", "uat")
	if r := readiness(t, admin); failures > 0 || strings.Contains(r, "failed") {
		t.Errorf("after the monitor's password was rotated in its password_file: %v failed reads, /readiness:\n%s\nlog:\n%s", failures, r, bin.logText())
	}
}

// TestRedteamBorrowedSizesOtherDatabase: one production instance holds
// two databases (ledger and billing), and so does uat (ledger_uat and
// billing_uat), each environment behind one target, as docs/environments.md
// sets them up. The monitor: block names one database, ledger; a session
// of uat's billing_uat is judged with ledger's sizes of the same schema
// and name: billing's 30,000-row accounts by ledger's 5-row accounts, so
// uat allows the type change production refuses in billing.
//
// Fixed: the borrowing target maps its databases to the source's
// (sizes_databases: {billing_uat: billing, ledger_uat: ledger}), each read
// over the monitor's role in that database; a session of a database the
// map does not name (scratch_uat) is judged with its own sizes, counted in
// pgguard_borrowed_sizes_unmapped_sessions_total and logged once.
func TestRedteamBorrowedSizesOtherDatabase(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	sizesDatabase(t, pg, "ledger", append(borrowSchema, borrowRows(5)...)...)
	sizesDatabase(t, pg, "billing", append(borrowSchema, borrowRows(30000)...)...)
	sizesDatabase(t, pg, "ledger_uat", append(borrowSchema, borrowRows(5)...)...)
	sizesDatabase(t, pg, "billing_uat", append(borrowSchema, borrowRows(5)...)...)
	// A database uat serves that the map leaves out: production's billing
	// would refuse, its own 5 rows allow.
	sizesDatabase(t, pg, "scratch_uat", append(borrowSchema, borrowRows(5)...)...)
	t.Setenv("PGGUARD_TEST_MONITOR_PASSWORD", pgtest.Password)
	prod, uat, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	cfg := fmt.Sprintf("proxy:\n  admin: %s\n  targets:\n"+
		"    - {name: production, listen: %s, upstream: %s, monitor: {user: %s, database: ledger, password_env: PGGUARD_TEST_MONITOR_PASSWORD}}\n"+
		"    - {name: uat, listen: %s, upstream: %s, sizes_from: production, sizes_refresh: 10s, sizes_databases: {billing_uat: billing, ledger_uat: ledger}}\n",
		admin, prod, pg.Addr(), pgtest.SCRAMUser, uat, pg.Addr())
	if err := os.WriteFile(rules, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := startBinary(t, "--rules", rules, "--log-format", "json")
	waitHTTP(t, "http://"+admin+"/startup", 200)
	waitUntil(t, "production's sizes read by uat", 20*time.Second, func() bool {
		return sum(scrape(t, admin), "pgguard_borrowed_sizes_in_use", "target", "uat") == 2
	})
	c := borrowCase{sql: "ALTER TABLE accounts ALTER COLUMN amount TYPE bigint", inTx: true}
	verdict := func(addr, db string) agreeVerdict {
		s := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, addr, db))
		defer s.conn.Close(context.Background())
		return verdictOf(t, s, c)
	}
	p, u := verdict(prod, "billing"), verdict(uat, "billing_uat")
	if p.action != policy.Reject {
		t.Fatalf("production's billing: %s, want refused", p.key())
	}
	if u.key() != p.key() {
		t.Errorf("uat's billing_uat decides %s, production's billing %s", u.key(), p.key())
	}
	if pl, ul := verdict(prod, "ledger"), verdict(uat, "ledger_uat"); pl.key() != ul.key() || pl.action == policy.Reject {
		t.Errorf("uat's ledger_uat decides %s, production's ledger %s (5 rows: allowed)", ul.key(), pl.key())
	}
	if v := verdict(uat, "scratch_uat"); v.action == policy.Reject {
		t.Errorf("uat's scratch_uat, which sizes_databases does not name, decides %s: judged with another database's sizes", v.key())
	}
	if n := sum(scrape(t, admin), "pgguard_borrowed_sizes_unmapped_sessions_total", "target", "uat"); n != 1 {
		t.Errorf("unmapped sessions counted: %v, want 1", n)
	}
	if log := bin.logText(); !strings.Contains(log, "sizes_databases names no source database") {
		t.Errorf("no warning of the unmapped database in the log:\n%s", log)
	}
	if r := readiness(t, admin); !strings.Contains(r, "production/billing") || !strings.Contains(r, "production/ledger") {
		t.Errorf("/readiness names no per-database source:\n%s", r)
	}
}
