package proxy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestRedteamKeywordNamedUserFunctions: PostgreSQL lets an unreserved (or
// type/function-name) keyword name a function, called unquoted:
// refresh(), validate(int), notify(), data(). The trigger for user code
// (policy.CallsUserFunction) took every keyword before "(" for syntax
// (VALUES (, ON CONFLICT (), so an application's autocommit SELECT
// refresh() whose body runs ALTER TABLE behind an open reader waited with
// the session's own lock_timeout (none: the 10s context) instead of
// pgguard's, as SELECT rt20d_other() does (TestCalledDDLGetsLockTimeout).
func TestRedteamKeywordNamedUserFunctions(t *testing.T) {
	_, addr, _ := guardProxy(t, rtRules, nil)
	ctx := context.Background()
	body := " LANGUAGE plpgsql AS $$ BEGIN ALTER TABLE rt20d_kw ALTER COLUMN id SET DEFAULT 1; RETURN 1; END $$"
	if err := pgExec("guard", "DROP TABLE IF EXISTS rt20d_kw", "CREATE TABLE rt20d_kw (id int)",
		"CREATE OR REPLACE FUNCTION refresh() RETURNS int"+body,
		"CREATE OR REPLACE FUNCTION validate(int) RETURNS int"+body,
		"CREATE OR REPLACE FUNCTION data() RETURNS int"+body); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pgExec("guard", "DROP TABLE IF EXISTS rt20d_kw", "DROP FUNCTION IF EXISTS refresh()", "DROP FUNCTION IF EXISTS validate(int)", "DROP FUNCTION IF EXISTS data()")
	})
	for _, sql := range []string{
		"SELECT refresh()",
		"SELECT validate(1)",
		"SELECT 1 WHERE data() = 1",
		"SELECT * FROM refresh()",
	} {
		t.Run(sql, func(t *testing.T) {
			reader := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
			mustExec(t, reader, "BEGIN")
			mustExec(t, reader, "SELECT * FROM rt20d_kw")
			defer reader.Exec(ctx, "ROLLBACK")
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			start := time.Now()
			_, err := conn.Exec(tctx, sql)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "55P03" {
				t.Fatalf("%s behind an open reader: %v after %v; want pgguard's lock_timeout (55P03)", sql, err, time.Since(start).Round(time.Millisecond))
			}
		})
	}
}
