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

// TestRedteamSizesFileReplacedByAnotherDatabase: a target's sizes_file is
// production's export, and sizes_databases says uat borrows production's
// sizes; check-config and startup refuse a file of another database
// ("a sizes_file holds one database"). The scheduled export job then
// writes billing's export to that path (one variable wrong in a job that
// exports several databases). The file is read again when it changes,
// without that check: uat is judged with billing's sizes, where accounts
// has 5 rows, and allows the type change production refuses.
func TestRedteamSizesFileReplacedByAnotherDatabase(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	sizesDatabase(t, pg, "production", append(borrowSchema, borrowRows(30000)...)...)
	sizesDatabase(t, pg, "billing", append(borrowSchema, borrowRows(5)...)...)
	sizesDatabase(t, pg, "uat", append(borrowSchema, borrowRows(10)...)...)
	file := exportSizes(t, pg, "production")
	uat, admin := freeAddr(t), freeAddr(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	cfg := fmt.Sprintf("proxy:\n  admin: %s\n  targets:\n"+
		"    - {name: uat, listen: %s, upstream: %s, sizes_file: %s, sizes_databases: {uat: production}}\n",
		admin, uat, pg.Addr(), file)
	if err := os.WriteFile(rules, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	startBinary(t, "--rules", rules, "--log-format", "json")
	waitHTTP(t, "http://"+admin+"/startup", 200)
	c := borrowCase{sql: "ALTER TABLE accounts ALTER COLUMN amount TYPE bigint", inTx: true}
	verdict := func() agreeVerdict {
		s := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/uat?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, uat))
		defer s.conn.Close(context.Background())
		return verdictOf(t, s, c)
	}
	if v := verdict(); v.action != policy.Reject {
		t.Fatalf("uat with production's file: %s, want refused", v.key())
	}
	other := exportSizes(t, pg, "billing")
	if err := os.Rename(other, file); err != nil {
		t.Fatal(err)
	}
	time.Sleep(sizesFileCheck + 3*time.Second)
	if v := verdict(); v.action != policy.Reject {
		t.Errorf("after billing's export replaced production's file: uat decides %s; sizes_databases says production's sizes, which refuse it", v.key())
	}
}
