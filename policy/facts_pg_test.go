package policy

import (
	"context"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// The lock the engine names for a statement (Decision.Lock) decides whether
// the proxy gives it lock_timeout and looks at the lock queue first, so it
// must be the lock PostgreSQL takes on the statement's main table: each
// statement runs in a transaction on a real server, and the strongest mode
// it holds on that table is compared.
func TestStatementLocksMatchServer(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the PostgreSQL lock check in -short mode")
	}
	s := pgtest.Must(t, pgtest.Options{})
	if err := s.Exec("CREATE DATABASE facts"); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, s, "facts")
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE t (id int PRIMARY KEY, v text)",
		"CREATE TABLE p (id int, k int) PARTITION BY RANGE (k)",
		"CREATE TABLE p_default PARTITION OF p DEFAULT",
		"CREATE SCHEMA other",
		"CREATE POLICY t_pol ON t USING (true)",
		"CREATE FUNCTION t_trig() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, c := range []struct{ sql, table string }{
		{"CREATE RULE t_rule AS ON INSERT TO t DO ALSO NOTHING", "t"},
		{"CREATE POLICY t_pol2 ON t USING (id > 0)", "t"},
		{"ALTER POLICY t_pol ON t USING (id > 1)", "t"},
		{"CREATE TABLE p_1 PARTITION OF p FOR VALUES FROM (0) TO (10)", "p"},
		{"CREATE TABLE t_child () INHERITS (t)", "t"},
		{"CREATE TRIGGER t_tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION t_trig()", "t"},
		{"ALTER TABLE t SET SCHEMA other", "t"},
		{"ALTER TABLE t ADD COLUMN c int", "t"},
		{"ALTER TABLE t RENAME TO t2", "t"},
		{"CREATE INDEX t_v ON t (v)", "t"},
		{"TRUNCATE t", "t"},
		{"LOCK TABLE t IN SHARE MODE", "t"},
		{"DROP POLICY t_pol ON t", "t"},
		{"COMMENT ON TABLE t IS 'x'", "t"},
		{"CREATE STATISTICS t_st ON id, v FROM t", "t"},
	} {
		t.Run(c.sql, func(t *testing.T) {
			tree, err := pg_query.Parse(c.sql)
			if err != nil {
				t.Fatal(err)
			}
			want := ""
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			var oid uint32
			if err := tx.QueryRow(ctx, "SELECT $1::regclass::oid", c.table).Scan(&oid); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, c.sql); err != nil {
				t.Fatal(err)
			}
			var modes []string
			if err := tx.QueryRow(ctx, "SELECT array(SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() AND granted AND locktype = 'relation' AND relation = $1)", oid).Scan(&modes); err != nil {
				t.Fatal(err)
			}
			for _, m := range modes {
				for _, l := range []string{LockAccessShare, LockRowShare, LockRowExclusive, LockShareUpdateExclusive, LockShare, LockShareRowExclusive, LockExclusive, LockAccessExclusive} {
					if pgLocksName(l) == m {
						want = strongerLock(want, l)
					}
				}
			}
			got := statementFacts(tree.Stmts[0].Stmt).lock
			if got != want && !(want == LockAccessShare && got == "") {
				t.Errorf("the engine says %q, PostgreSQL holds %v on %s (strongest %q)", got, modes, c.table, want)
			}
		})
	}
}
