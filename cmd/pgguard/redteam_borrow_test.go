package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// slowRelay accepts TCP connections and relays them to upstream after
// delay: a production that takes a while to answer (a far region, an Auth
// Proxy starting, a catalog of 100,000 relations).
func slowRelay(t *testing.T, upstream string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				time.Sleep(delay)
				u, err := net.Dial("tcp", upstream)
				if err != nil {
					return
				}
				defer u.Close()
				go io.Copy(u, c)
				io.Copy(c, u)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestRedteamBorrowedSizesBeforeFirstRead: pgguard reads production's
// sizes in the background after it starts listening; /startup turns 200
// at once. A migration Job's pgguard sidecar (deploy/kubernetes) starts
// the migration as soon as /startup answers, and the migration's
// statements are then judged with uat's own sizes: a type change of
// production's 30,000-row table passes in uat and is refused in
// production, with no word to the client.
func TestRedteamBorrowedSizesBeforeFirstRead(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	sizesDatabase(t, pg, "production", append(borrowSchema, borrowRows(30000)...)...)
	sizesDatabase(t, pg, "uat", append(borrowSchema, borrowRows(10)...)...)
	t.Setenv("PGGUARD_TEST_MONITOR_PASSWORD", pgtest.Password)
	slow := slowRelay(t, pg.Addr(), 4*time.Second)
	uat, admin := freeAddr(t), freeAddr(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	cfg := fmt.Sprintf("proxy:\n  admin: %s\n  targets:\n"+
		"    - {name: production, listen: %s, upstream: %s, monitor: {user: %s, database: production, password_env: PGGUARD_TEST_MONITOR_PASSWORD}}\n"+
		"    - {name: uat, listen: %s, upstream: %s, sizes_from: production, sizes_refresh: 10s}\n",
		admin, freeAddr(t), slow, pgtest.SCRAMUser, uat, pg.Addr())
	if err := os.WriteFile(rules, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	startBinary(t, "--rules", rules, "--log-format", "json")
	waitHTTP(t, "http://"+admin+"/startup", 200)
	s := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/uat?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, uat))
	defer s.conn.Close(context.Background())
	v := verdictOf(t, s, borrowCase{sql: "ALTER TABLE accounts ALTER COLUMN amount TYPE bigint", inTx: true})
	if v.action != policy.Reject {
		t.Errorf("the migration's first statement, right after /startup: %s; production (30,000 rows) refuses it", v.key())
	}
}

// TestRedteamBorrowedSizesOtherSchema: production keeps the application's
// tables in schema app (its role's search_path is app), uat in public, as
// environments built differently (a restore into a schema of its own, the
// migrations run into public) do. Borrowed looks production up by the
// schema uat resolves (public.accounts), finds nothing, and judges uat's
// 10 rows: uat allows the type change production refuses, while lint
// --sizes with production's file (an unqualified name: public, else the
// only table of that name) refuses it.
func TestRedteamBorrowedSizesOtherSchema(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	inApp := []string{"CREATE SCHEMA app", "SET search_path = app"}
	inApp = append(inApp, borrowSchema...)
	inApp = append(inApp, borrowRows(30000)...)
	inApp = append(inApp, "ALTER ROLE "+pgtest.SCRAMUser+" IN DATABASE production SET search_path = app")
	sizesDatabase(t, pg, "production", inApp...)
	sizesDatabase(t, pg, "uat", append(borrowSchema, borrowRows(10)...)...)
	file := exportSizes(t, pg, "production")
	addrs, _ := threeEnvironments(t, pg, "", pgtest.SCRAMUser, file)
	c := borrowCase{sql: "ALTER TABLE accounts ALTER COLUMN amount TYPE bigint", inTx: true}
	got := map[string]string{}
	for name, addr := range addrs {
		db := "uat"
		if name == "production" {
			db = "production"
		}
		s := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, addr, db))
		got[name] = verdictOf(t, s, c).key()
		s.conn.Close(context.Background())
	}
	if !strings.Contains(got["production"], "alter-column-type@") {
		t.Fatalf("production: %s, want refused", got["production"])
	}
	for _, name := range []string{"uat", "uat-file"} {
		if got[name] != got["production"] {
			t.Errorf("%s decides %s, production %s", name, got[name], got["production"])
		}
	}
	// lint --sizes with production's file finds app.accounts by the
	// search_path the export recorded.
	migration := filepath.Join(t.TempDir(), "m.sql")
	if err := os.WriteFile(migration, []byte(c.sql+";\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd(t, "", "lint", "--in-transaction", "--sizes", file, migration); code == 0 || !strings.Contains(out, "alter-column-type") {
		t.Errorf("lint --sizes with production's file: exit %d, %s%s; the proxy on production refuses it", code, out, errOut)
	}
}

// TestRedteamLintSizesSetSearchPath: a migration file that sets its
// search_path (SET search_path TO app, public) is judged by lint --sizes
// as if every unqualified name were in public. Production holds a small
// legacy public.accounts and the real app.accounts of 30,000 rows; the
// proxy on production, after the same SET, refuses the type change of
// app.accounts; lint --sizes allows it (public.accounts is small).
func TestRedteamLintSizesSetSearchPath(t *testing.T) {
	file, s := productionWithLegacyAccounts(t)
	defer s.conn.Close(context.Background())
	s.must(t, "SET search_path TO app, public")
	v := s.verdict(t, agreeContext{inTransaction: true}, "ALTER TABLE accounts ALTER COLUMN amount TYPE bigint")
	if v.action != policy.Reject {
		t.Fatalf("production after SET search_path: %s, want refused", v.key())
	}
	migration := filepath.Join(t.TempDir(), "m.sql")
	if err := os.WriteFile(migration, []byte("SET search_path TO app, public;\nALTER TABLE accounts ALTER COLUMN amount TYPE bigint;\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "", "lint", "--in-transaction", "--sizes", file, migration)
	if code == 0 || !strings.Contains(out, "alter-column-type") {
		t.Errorf("lint --sizes with SET search_path TO app: exit %d, %s%s; the proxy on production refuses it", code, out, errOut)
	}
}

// productionWithLegacyAccounts starts a production database whose
// application tables live in schema app (accounts: 30,000 rows) beside a
// small legacy public.accounts (5 rows), exports its sizes, and puts
// pgguard with one target in front of it: the sizes file and a session of
// production's through pgguard.
func productionWithLegacyAccounts(t *testing.T) (string, *agreeSession) {
	t.Helper()
	pg := pgtest.Must(t, pgtest.Options{})
	inApp := []string{"CREATE SCHEMA app", "SET search_path = app"}
	inApp = append(inApp, borrowSchema...)
	inApp = append(inApp, borrowRows(30000)...)
	inApp = append(inApp, "SET search_path = public",
		"CREATE TABLE public.accounts (id bigint PRIMARY KEY, email text, status text, amount int, note text)",
		"INSERT INTO public.accounts SELECT g, 'x', 'open', g, NULL FROM generate_series(1, 5) g", "ANALYZE public.accounts")
	sizesDatabase(t, pg, "production", inApp...)
	file := exportSizes(t, pg, "production")
	prod, admin := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf("proxy:\n  admin: %s\n  targets:\n    - {name: production, listen: %s, upstream: %s}\n", admin, prod, pg.Addr())
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	startBinary(t, "--rules", rules, "--log-format", "json")
	waitHTTP(t, "http://"+admin+"/startup", 200)
	s := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/production?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, prod))
	return file, s
}
