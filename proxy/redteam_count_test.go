package proxy

import (
	"context"
	"testing"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestRedteamCountRunsVolatileOperators: large-dml counts the rows of an
// UPDATE whose WHERE the planner can only guess, by running its SELECT
// form, when that calls no function that may have side effects
// (sideEffectFree looks at function calls). An operator is a function
// call the parse tree does not spell as one: ### here is backed by a
// VOLATILE function that writes a row to a log table. In a migration's
// session, outside a transaction block, pgguard's count ran it on the
// rows of big and then refused the UPDATE, saying nothing ran: the log
// holds the rows of pgguard's count (committed: the count has a
// transaction of its own). PostgreSQL runs nothing of a statement that
// is not sent.
func TestRedteamCountRunsVolatileOperators(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	if err := pgExec("guard",
		"DROP TABLE IF EXISTS rt20d_log", "CREATE TABLE rt20d_log (n int)",
		"CREATE OR REPLACE FUNCTION rt20d_logged(bigint, int) RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN INSERT INTO rt20d_log VALUES (1); RETURN $1 + $2; END $$",
		"DROP OPERATOR IF EXISTS ### (bigint, int)",
		"CREATE OPERATOR ### (LEFTARG = bigint, RIGHTARG = int, FUNCTION = rt20d_logged)",
	); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pgExec("guard", "DROP OPERATOR IF EXISTS ### (bigint, int)", "DROP FUNCTION IF EXISTS rt20d_logged(bigint, int)", "DROP TABLE IF EXISTS rt20d_log")
	})
	for _, c := range []struct{ name, sql string }{
		{"operator", "UPDATE big SET note = note WHERE (id ### 0) > 0"},
		{"OPERATOR() syntax", "UPDATE big SET note = note WHERE id OPERATOR(public.###) 0 > 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := pgExec("guard", "TRUNCATE rt20d_log"); err != nil {
				t.Fatal(err)
			}
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=flyway")
			_, err := conn.Exec(ctx, c.sql)
			if err == nil {
				t.Fatalf("%s ran; want large-dml's refusal", c.sql)
			}
			wantRefusal(t, err, "large-dml")
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM rt20d_log").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%s was refused (nothing ran), but the operator's function ran %d times: pgguard's count ran it", c.sql, n)
			}
		})
	}
}
