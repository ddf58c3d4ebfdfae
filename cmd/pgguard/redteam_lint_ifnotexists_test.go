package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pgguard/pgguard/policy"
)

// TestRedteamLintSizesCreateTableIfNotExists: golang-migrate's and knex's
// usual migration (CREATE TABLE IF NOT EXISTS payees ..., then an index
// and a foreign key on it in the same file). Production has no payees:
// the proxy on production knows the table is created by the statement
// before, empty, and allows the index. lint --sizes with production's
// export, which lists no payees either, still treated IF NOT EXISTS as
// "may already exist, of unknown size" and refused the index: lint
// --sizes did not agree with the proxy on production.
func TestRedteamLintSizesCreateTableIfNotExists(t *testing.T) {
	file, s := productionWithLegacyAccounts(t)
	defer s.conn.Close(context.Background())
	stmts := []string{
		"CREATE TABLE IF NOT EXISTS payees (id bigserial PRIMARY KEY, account_id bigint)",
		"CREATE INDEX payees_account_idx ON payees (account_id)",
	}
	s.must(t, "BEGIN")
	s.must(t, stmts[0])
	v := s.verdict(t, agreeContext{}, stmts[1])
	if v.action != policy.Allow {
		t.Fatalf("the proxy on production: %s, want allowed (a table the transaction created)", v.key())
	}
	migration := filepath.Join(t.TempDir(), "000002_payees.up.sql")
	if err := os.WriteFile(migration, []byte(fmt.Sprintf("%s;\n%s;\n", stmts[0], stmts[1])), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCmd(t, "", "lint", "--in-transaction", "--sizes", file, migration); code != 0 {
		t.Errorf("lint --sizes: exit %d, %s%s; the proxy on production allows it", code, out, errOut)
	}
}
