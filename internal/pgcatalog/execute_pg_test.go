package pgcatalog

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// TestExecuteEstimatedWithValues: in a migration's session, EXECUTE of an
// SQL-level prepared UPDATE or DELETE is judged as the statement it runs
// with its values, as a Bind's are: refused by rule large-dml exactly
// when the server's own EXPLAIN EXECUTE of it plans more than
// large_dml.max_rows rows. The prepared statements live in the session
// whose catalog pgguard asks (pg_prepared_statements), or earlier in the
// same Query.
func TestExecuteEstimatedWithValues(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the EXECUTE estimate against PostgreSQL in -short mode")
	}
	s := pgtest.Must(t, pgtest.Options{})
	if err := s.Exec("CREATE DATABASE execdb"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, s.DSN(pgtest.SuperUser, "execdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string) [][]byte {
		t.Helper()
		res, err := conn.Exec(ctx, sql).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if len(res) == 1 && len(res[0].Rows) == 1 {
			return res[0].Rows[0]
		}
		return nil
	}
	exec("CREATE TABLE big (id int PRIMARY KEY, v int)")
	exec("INSERT INTO big SELECT g, 0 FROM generate_series(1, 300000) g")
	exec("ANALYZE big")
	exec("PREPARE upd(int) AS UPDATE big SET v = v + 1 WHERE id > $1")
	exec("PREPARE del AS DELETE FROM big WHERE id > $1 AND v >= $2")
	eng, err := policy.NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	max := eng.Config().LargeDML.MaxRows
	cat := &Catalog{Q: connQuerier{conn: conn, version: s.Version}}
	serverRows := func(execute string) int64 {
		row := exec("EXPLAIN (FORMAT JSON) " + execute)
		n, ok := planRows(string(row[0]))
		if !ok {
			t.Fatalf("EXPLAIN %s: %s", execute, row[0])
		}
		return n
	}
	judge := func(query string, migration bool) policy.Decision {
		ds, err := eng.DecideQuery(ctx, query, &policy.Context{Alone: true, Migration: migration, ServerVersion: s.Version, Catalog: cat})
		if err != nil {
			t.Fatal(err)
		}
		return ds[len(ds)-1].Decision
	}
	refusedBy := func(d policy.Decision, rule string) bool {
		for _, f := range d.Findings {
			if f.RuleID == rule && f.Action == policy.Reject {
				return true
			}
		}
		return false
	}
	for _, from := range []int{0, 150000, 250000, 299990} {
		for _, execute := range []string{fmt.Sprintf("EXECUTE upd(%d)", from), fmt.Sprintf("EXECUTE del(%d, '0')", from)} {
			rows := serverRows(execute)
			d := judge(execute, true)
			if large := rows > max; refusedBy(d, "large-dml") != large {
				t.Errorf("%s: the server plans %d rows (max_rows %d); pgguard: %v %+v", execute, rows, max, d.Action, d.Findings)
			}
		}
	}
	// An application's session is not estimated (its statements by key
	// stay on the fast path), but the fast path hands a migration's
	// EXECUTE to the engine.
	if d := judge("EXECUTE upd(0)", false); d.Action != policy.Allow {
		t.Errorf("EXECUTE upd(0) in an application's session: %v %+v", d.Action, d.Findings)
	}
	if _, plain, dml := eng.PlainDML("EXECUTE upd(0)", false); plain && !dml {
		t.Errorf("the fast path lets a migration's EXECUTE through unjudged")
	}
	// Prepared earlier in the same Query: not in pg_prepared_statements yet.
	q := "PREPARE q(int) AS DELETE FROM big WHERE id > $1; EXECUTE q(10)"
	if d := judge(q, true); !refusedBy(d, "large-dml") {
		t.Errorf("%s: %v %+v, want large-dml's refusal", q, d.Action, d.Findings)
	}
	q = "PREPARE q2(int) AS DELETE FROM big WHERE id > $1; EXECUTE q2(299999)"
	if d := judge(q, true); d.Action != policy.Allow {
		t.Errorf("%s: %v %+v, want it allowed", q, d.Action, d.Findings)
	}
}
