package policy

import (
	"context"
	"github.com/pgguard/pgguard/policy/sqltext"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestSameTypeChangeMatchesServer checks on a real server what
// alter-column-type decides about a change of a column to its own type,
// as sequelize's changeColumn of an ENUM column sends it: PostgreSQL
// rewrites nothing (relfilenode unchanged), so pgguard must not refuse
// it; and a change of an enum column to another enum, which PostgreSQL
// rewrites, is refused with ALTER TYPE ... ADD VALUE as the fix.
func TestSameTypeChangeMatchesServer(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the PostgreSQL verification in -short mode")
	}
	s := pgtest.Must(t, pgtest.Options{})
	ctx := context.Background()
	if err := s.Exec("CREATE DATABASE enum_verify"); err != nil {
		t.Fatal(err)
	}
	a := connect(t, s, "enum_verify")
	for _, q := range []string{
		`CREATE TYPE "enum_ledger_status" AS ENUM ('open', 'closed')`,
		`CREATE TYPE ledger_status_v2 AS ENUM ('open', 'closed', 'void')`,
		`CREATE TABLE ledger (id bigint PRIMARY KEY, status "enum_ledger_status" NOT NULL, note varchar(100))`,
		`CREATE INDEX ledger_status ON ledger (status)`,
		`INSERT INTO ledger SELECT i, CASE WHEN i % 2 = 0 THEN 'open' ELSE 'closed' END::"enum_ledger_status", 'n' || i FROM generate_series(1, 20000) i`,
		`ANALYZE ledger`,
	} {
		if _, err := a.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	cat := &pgCatalog{conn: connect(t, s, "enum_verify")}
	e := fixtureEngine(t, nil)
	for _, c := range []struct {
		sql     string
		rewrite bool
	}{
		// sequelize 6 changeColumn of an ENUM column, after its DO block
		// found the type already there.
		{`ALTER TABLE "ledger" ALTER COLUMN "status" TYPE "enum_ledger_status" USING ("status"::"public"."enum_ledger_status")`, false},
		{`ALTER TABLE ledger ALTER COLUMN status TYPE enum_ledger_status`, false},
		{`ALTER TABLE ledger ALTER COLUMN note TYPE varchar(100) USING note::varchar(100)`, false},
		{`ALTER TABLE ledger ALTER COLUMN status TYPE ledger_status_v2 USING status::text::ledger_status_v2`, true},
	} {
		sc := &Context{InTransaction: true, Alone: true, ServerVersion: s.Version, Catalog: cat, TimeZone: "UTC"}
		d := e.Decide(ctx, sqltext.Statement{Text: c.sql}, sc)
		var refused *Finding
		for i := range d.Findings {
			if d.Findings[i].RuleID == "alter-column-type" {
				refused = &d.Findings[i]
			}
		}
		obs := observe(t, a, func(tx pgx.Tx) error { _, err := tx.Exec(ctx, c.sql); return err }, true)
		if obs.err != nil {
			t.Fatalf("%s: %v", c.sql, obs.err)
		}
		if rewrote := obs.work == WorkRewrite; rewrote != c.rewrite {
			t.Errorf("%s: PostgreSQL rewrote the table: %v, want %v", c.sql, rewrote, c.rewrite)
		}
		if (refused != nil) != (obs.work != WorkNone) {
			t.Errorf("%s: pgguard refuses it: %v, but PostgreSQL did work %q: %+v", c.sql, refused != nil, obs.work, refused)
		}
		if c.rewrite && refused != nil && !containsWord(refused.Message, "ALTER TYPE") {
			t.Errorf("%s: the refusal of an enum change does not give ALTER TYPE ... ADD VALUE: %s", c.sql, refused.Message)
		}
	}
	// The recipe's ALTER TYPE ... ADD VALUE touches no table.
	obs := observe(t, a, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `ALTER TYPE "enum_ledger_status" ADD VALUE IF NOT EXISTS 'void'`)
		return err
	}, true)
	if obs.err != nil || obs.work != WorkNone || obs.lock != "" {
		t.Errorf("ALTER TYPE ... ADD VALUE: err %v, work %q, lock on ledger %q", obs.err, obs.work, obs.lock)
	}
}
