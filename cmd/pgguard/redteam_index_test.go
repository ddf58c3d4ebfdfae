package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// TestRedteamUniqueIndexOnlyInUAT: rule large-dml lets a migration's
// UPDATE by a unique key through without an estimate, and whether a key
// is unique is asked of the session's own database. The unique index on
// accounts (tenant_id) exists, valid, in uat; in production its build
// failed on the duplicates production has (left INVALID, as a failed
// CREATE UNIQUE INDEX CONCURRENTLY leaves it). UPDATE ... WHERE tenant_id
// = 5 changes 1,500 of production's 30,000 rows (over large_dml.max_rows 1,000,
// refused there) and passes in uat unestimated: the size is never asked,
// so borrowing production's sizes changes nothing.
func TestRedteamUniqueIndexOnlyInUAT(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	schema := "CREATE TABLE accounts (id bigint PRIMARY KEY, tenant_id int, note text)"
	sizesDatabase(t, pg, "production", schema,
		"INSERT INTO accounts SELECT g, CASE WHEN g <= 1500 THEN 5 ELSE g END, NULL FROM generate_series(1, 30000) g",
		"CREATE INDEX accounts_tenant ON accounts (tenant_id)",
		// What a failed unique build leaves: the index, not valid.
		"SELECT pg_catalog.pg_stat_force_next_flush()", "VACUUM ANALYZE")
	if err := execInSuper(pg, "production", "UPDATE pg_index SET indisunique = true, indisvalid = false WHERE indexrelid = 'accounts_tenant'::regclass"); err != nil {
		t.Fatal(err)
	}
	sizesDatabase(t, pg, "uat", schema,
		"INSERT INTO accounts SELECT g, g, NULL FROM generate_series(1, 10) g",
		"CREATE UNIQUE INDEX accounts_tenant ON accounts (tenant_id)", "ANALYZE")
	file := exportSizes(t, pg, "production")
	prod, uat, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	cfg := fmt.Sprintf("large_dml: {max_rows: 1000}\nproxy:\n  admin: %s\n  targets:\n"+
		"    - {name: production, listen: %s, upstream: %s}\n"+
		"    - {name: uat, listen: %s, upstream: %s, sizes_file: %s}\n",
		admin, prod, pg.Addr(), uat, pg.Addr(), file)
	if err := os.WriteFile(rules, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	startBinary(t, "--rules", rules, "--log-format", "json")
	waitHTTP(t, "http://"+admin+"/startup", 200)
	verdict := func(addr, db string) agreeVerdict {
		s := dialAgree(t, fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgtest.SCRAMUser, pgtest.Password, addr, db))
		defer s.conn.Close(context.Background())
		s.exec(t, "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS marker int") // DDL: a migration's session from here on
		return verdictOf(t, s, borrowCase{sql: "UPDATE accounts SET note = 'x' WHERE tenant_id = 5", inTx: true})
	}
	p, u := verdict(prod, "production"), verdict(uat, "uat")
	if p.action != policy.Reject {
		t.Fatalf("production: %s, want refused", p.key())
	}
	if u.key() != p.key() {
		t.Errorf("uat decides %s, production %s", u.key(), p.key())
	}
}

// execInSuper runs statements in database db as the superuser.
func execInSuper(pg *pgtest.Server, db string, sql ...string) error {
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, pg.DSN(pgtest.SuperUser, db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, q := range sql {
		if _, err := conn.Exec(ctx, q).ReadAll(); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}
