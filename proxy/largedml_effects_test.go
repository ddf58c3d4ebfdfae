package proxy

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// effectsBig is a table of 150,000 rows that rules, triggers and functions
// change; effectsChanged counts the rows changed (updated or deleted), and
// effectsReset puts them back.
const (
	effectsChanged = "SELECT (SELECT count(*) FROM fx_big WHERE v <> 0) + (150000 - (SELECT count(*) FROM fx_big))"
	effectsReset   = "TRUNCATE fx_big; INSERT INTO fx_big SELECT g, 0 FROM generate_series(1, 150000) g; ANALYZE fx_big"
)

func effectsTables(t *testing.T, setup ...string) {
	t.Helper()
	largeDMLSetup(t)
	base := []string{
		"DROP TABLE IF EXISTS fx_small, fx_big, fx_other CASCADE",
		"CREATE TABLE fx_small (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0)",
		"CREATE TABLE fx_other (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0)",
		"CREATE TABLE fx_big (id bigint, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"INSERT INTO fx_small SELECT g, 0 FROM generate_series(1, 10) g",
		"INSERT INTO fx_other SELECT g, 0 FROM generate_series(1, 10) g",
		"INSERT INTO fx_big SELECT g, 0 FROM generate_series(1, 150000) g",
		"ANALYZE fx_small, fx_other, fx_big",
	}
	if err := pgExec("guard", append(base, setup...)...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pgExec("guard", "DROP TABLE IF EXISTS fx_small, fx_big, fx_other CASCADE") })
}

// Rules of every kind whose action changes 150,000 rows of fx_big: each
// statement is refused in a migration's session, and no row changes.
func TestLargeDMLRuleShapes(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup []string
		stmts []string
	}{
		{"instead update", []string{"CREATE RULE fx_r AS ON UPDATE TO fx_small DO INSTEAD UPDATE fx_big SET v = v + 1"},
			[]string{"UPDATE fx_small SET v = 1 WHERE id = 1", "UPDATE fx_small SET v = 1"}},
		{"also delete on delete", []string{"CREATE RULE fx_r AS ON DELETE TO fx_small DO ALSO DELETE FROM fx_big WHERE v = 0"},
			[]string{"DELETE FROM fx_small WHERE id = 1", "DELETE FROM fx_small WHERE v = 0"}},
		{"also update on insert", []string{"CREATE RULE fx_r AS ON INSERT TO fx_small DO ALSO UPDATE fx_big SET v = NEW.v"},
			[]string{"INSERT INTO fx_small VALUES (100, 1)", "INSERT INTO fx_small SELECT 101, 1"}},
		{"rule on a view", []string{
			"CREATE VIEW fx_view AS SELECT id, v FROM fx_small",
			"CREATE RULE fx_r AS ON UPDATE TO fx_view DO INSTEAD UPDATE fx_big SET v = NEW.v"},
			[]string{"UPDATE fx_view SET v = 1 WHERE id = 1"}},
		{"rule in a WITH query", []string{"CREATE RULE fx_r AS ON UPDATE TO fx_small DO ALSO UPDATE fx_big SET v = v + 1"},
			[]string{"WITH u AS (UPDATE fx_small SET v = 1 WHERE id = 1 RETURNING id) SELECT count(*) FROM u"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			effectsTables(t, c.setup...)
			redteamLargeDML(t, nil, c.stmts, effectsChanged, effectsReset)
		})
	}
}

// A rule whose action changes few rows is estimated and allowed; so is
// the statement in an application's session, which stays on the fast path
// (no estimate).
func TestLargeDMLRuleSmallActionAllowed(t *testing.T) {
	effectsTables(t, "CREATE RULE fx_r AS ON UPDATE TO fx_small DO ALSO UPDATE fx_other SET v = NEW.v WHERE id = NEW.id")
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
	mustExec(t, conn, "UPDATE fx_small SET v = 1 WHERE id = 1")
	mustExec(t, conn, "DELETE FROM fx_small WHERE id = 2")
}

// Inside a transaction block pgguard cannot EXPLAIN the rewritten
// statement without leaving a trace (a command id), so a migration's
// UPDATE of a table with rules is refused there as unsizable, however
// small the table; the transaction is left as the client's refusal
// leaves it.
func TestLargeDMLRuleInTransaction(t *testing.T) {
	effectsTables(t, "CREATE RULE fx_r AS ON UPDATE TO fx_small DO ALSO UPDATE fx_big SET v = v + 1")
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.Exec(ctx, "UPDATE fx_small SET v = 1 WHERE id = 1")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Fatalf("not refused: %v", err)
	}
	_ = tx.Rollback(ctx)
	direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	var n int64
	if err := direct.QueryRow(ctx, effectsChanged).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows changed (%v)", n, err)
	}
}
