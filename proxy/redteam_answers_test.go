package proxy

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// rt20bSameAnswer runs stmt straight to PostgreSQL and through pgguard (in
// a transaction rolled back after) and wants the same SQLSTATE.
func rt20bSameAnswer(t *testing.T, addr, stmt string) {
	t.Helper()
	ctx := context.Background()
	code := func(err error) string {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return pe.Code + " " + pe.Message
		}
		if err != nil {
			return err.Error()
		}
		return "ok"
	}
	direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	mustExec(t, direct, "BEGIN")
	_, derr := direct.Exec(ctx, stmt)
	direct.Exec(ctx, "ROLLBACK")
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
	mustExec(t, conn, "BEGIN")
	_, gerr := conn.Exec(ctx, stmt)
	conn.Exec(ctx, "ROLLBACK")
	var dpe, gpe *pgconn.PgError
	errors.As(derr, &dpe)
	errors.As(gerr, &gpe)
	if (dpe == nil) != (gpe == nil) || dpe != nil && dpe.Code != gpe.Code {
		t.Errorf("%s: through pgguard %s; straight to PostgreSQL %s", stmt, code(gerr), code(derr))
	}
}

// Red team (issue 20): a relation of another database (db.schema.name)
// is an error on PostgreSQL before anything is locked (0A000); pgguard
// dropped the database part and refused the statement as if it touched
// the table of the same name in this database, with its own 42501.
func TestRedteamOtherDatabaseAnsweredByServer(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	for _, stmt := range []string{
		"DROP TABLE otherdb.public.big",
		"ALTER TABLE otherdb.public.big RENAME TO big2",
		"ALTER TABLE otherdb.public.big ALTER COLUMN note TYPE int USING 1",
		"TRUNCATE otherdb.public.big",
		"ALTER TABLE otherdb.public.big ADD COLUMN z float8 DEFAULT random()",
		"ALTER TABLE big ADD COLUMN z float8 DEFAULT random() REFERENCES otherdb.public.small",
	} {
		rt20bSameAnswer(t, addr, stmt)
	}
	// The session's own database named in full is this database: still
	// judged.
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
	for stmt, rule := range map[string]string{
		"DROP TABLE guard.public.big":                                       "drop-table",
		"ALTER TABLE guard.public.big ADD COLUMN z float8 DEFAULT random()": "add-column-volatile-default",
	} {
		_, err := conn.Exec(context.Background(), stmt)
		wantRefusal(t, err, rule)
	}
}

// A statement that fails to parse got pgguard's 42501 parse-error
// refusal where PostgreSQL 15 answers 42601 (syntax error): pgguard's
// parser knows PostgreSQL 17's grammar, which differs from 15's only by
// the keywords 16 and 17 added, so a syntax error in a statement that
// spells none of them is one on the server too, and the server's answer
// is the client's (in a transaction block, alone, and in a Query of
// several statements, of which the server then runs none).
func TestRedteamSyntaxErrorAnsweredByServer(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	for _, stmt := range []string{
		"ALTER TABLE big ADD COLUMN x int DEFAULT",
		"ALTER TABLE big RENAME COLUMN",
		"CREATE INDEX ON big (",
		"DROP TABLE big,",
		"UPDATE big SET note = WHERE id = 1",
		"ALTER TABLE big ADD COLUMN x int; DROP TABLE big CASCADE CASCADE",
	} {
		rt20bSameAnswer(t, addr, stmt)
	}
	// The Query's first statement must not have run.
	direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	var n int
	if err := direct.QueryRow(context.Background(), "SELECT count(*) FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'x'").Scan(&n); err != nil || n != 0 {
		t.Errorf("column x of big: %d (%v); the Query with a syntax error ran its first statement", n, err)
	}
}

// The other side of TestRedteamSyntaxErrorAnsweredByServer: a statement
// pg_query cannot parse only because it spells a keyword PostgreSQL 16 or
// 17 added (system_user, json_scalar, ...) is valid on PostgreSQL 15, so it
// is not sent on the strength of a syntax error: on_parse_error refuses it,
// as any DDL pgguard cannot read.
func TestSyntaxErrorOfNewKeywordNotSent(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	for _, stmt := range []string{
		"CREATE TABLE system_user (id int)",
		"CREATE FUNCTION json_scalar(int) RETURNS int LANGUAGE sql AS 'SELECT 1'",
	} {
		mustExec(t, direct, "BEGIN")
		if _, err := direct.Exec(context.Background(), stmt); err != nil {
			t.Fatalf("%s straight to PostgreSQL 15: %v; the premise is that 15 runs it", stmt, err)
		}
		mustExec(t, direct, "ROLLBACK")
		conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
		_, err := conn.Exec(context.Background(), stmt)
		wantRefusal(t, err, "parse-error")
	}
}
