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

// TestReloadBorrowedSizes: the borrowed sizes' settings (sizes_from,
// monitor:) change at a SIGHUP, as the policy does, without a restart:
// uat starts judging with its own sizes, borrows production's after a
// SIGHUP (a migration refused as production refuses it), keeps them when
// the next file is invalid, and judges with its own again when the
// setting is removed, also in a session opened while it borrowed. Every version of the file has the same size and
// modification time, so that the rules file poll never sees a change: only
// the SIGHUP applies it.
func TestReloadBorrowedSizes(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	sizesDatabase(t, pg, "production", append(borrowSchema, borrowRows(30000)...)...)
	sizesDatabase(t, pg, "uat", append(borrowSchema, borrowRows(10)...)...)
	t.Setenv("PGGUARD_TEST_MONITOR_PASSWORD", pgtest.Password)
	prod, uat, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	head := fmt.Sprintf("proxy:\n  admin: %s\n  targets:\n"+
		"    - {name: production, listen: %s, upstream: %s, monitor: {user: %s, database: production, password_env: PGGUARD_TEST_MONITOR_PASSWORD}}\n",
		admin, prod, pg.Addr(), pgtest.SCRAMUser)
	var stamp time.Time
	write := func(uatLine string) {
		t.Helper()
		body := head + uatLine
		body += "#" + strings.Repeat("x", 1024-len(body)-2) + "\n" // the same size every time
		if err := os.WriteFile(rules, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if stamp.IsZero() {
			fi, err := os.Stat(rules)
			if err != nil {
				t.Fatal(err)
			}
			stamp = fi.ModTime()
		}
		if err := os.Chtimes(rules, stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
	own := fmt.Sprintf("    - {name: uat, listen: %s, upstream: %s}\n", uat, pg.Addr())
	borrowing := fmt.Sprintf("    - {name: uat, listen: %s, upstream: %s, sizes_from: production, sizes_refresh: 10s}\n", uat, pg.Addr())
	invalid := fmt.Sprintf("    - {name: uat, listen: %s, upstream: %s, sizes_from: staging}\n", uat, pg.Addr())
	write(own)
	bin := startBinary(t, "--rules", rules, "--log-format", "json")
	waitHTTP(t, "http://"+admin+"/startup", 200)
	c := borrowCase{sql: "ALTER TABLE accounts ALTER COLUMN amount TYPE bigint", inTx: true}
	verdict := func() agreeVerdict {
		s := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/uat?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, uat))
		defer s.conn.Close(context.Background())
		return verdictOf(t, s, c)
	}
	if v := verdict(); v.action == policy.Reject {
		t.Fatalf("uat with its own 10 rows: %s, want allowed", v.key())
	}
	applied := func(n int) func() bool {
		return func() bool { return strings.Count(bin.logText(), "borrowed sizes: settings applied") >= n }
	}

	write(borrowing)
	time.Sleep(2*reloadPollInterval + 500*time.Millisecond) // the poll sees nothing
	if strings.Contains(bin.logText(), "settings applied") {
		t.Fatalf("the rules file poll saw a file of the same size and time")
	}
	bin.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the SIGHUP reload", 10*time.Second, applied(1))
	waitUntil(t, "production's sizes read by uat", 20*time.Second, func() bool {
		return sum(scrape(t, admin), "pgguard_borrowed_sizes_in_use", "target", "uat") == 1
	})
	// Opened before the next reload, asked after it.
	early := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/uat?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, uat))
	defer early.conn.Close(context.Background())
	if v := verdict(); v.action != policy.Reject || !strings.Contains(v.key(), "alter-column-type") {
		t.Fatalf("uat borrowing production's 30,000 rows after SIGHUP: %s, want refused", v.key())
	}

	write(invalid)
	bin.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the invalid settings refused", 10*time.Second, func() bool {
		return strings.Contains(bin.logText(), "borrowed sizes: the new settings are not valid")
	})
	if v := verdict(); v.action != policy.Reject {
		t.Errorf("after an invalid reload uat decides %s; the sizes in use should stay", v.key())
	}

	write(own)
	bin.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the reload to own sizes", 10*time.Second, applied(2))
	if v := verdict(); v.action == policy.Reject {
		t.Errorf("uat after sizes_from was removed: %s, want its own 10 rows (allowed)", v.key())
	}
	if v := verdictOf(t, early, c); v.action == policy.Reject {
		t.Errorf("a session opened while uat borrowed, after sizes_from was removed: %s, want its own 10 rows", v.key())
	}
	if n := sum(scrape(t, admin), "pgguard_borrowed_sizes_in_use", "target", "uat"); n != 0 {
		t.Errorf("pgguard_borrowed_sizes_in_use{target=uat} = %v after sizes_from was removed", n)
	}
	if r := readiness(t, admin); strings.Contains(r, "sizes uat") {
		t.Errorf("/readiness still lists uat's borrowed sizes:\n%s", r)
	}
}
