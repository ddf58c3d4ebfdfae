package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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

// An equality is a key only when it is the btree equality of the unique
// index's column: user-defined = operators that match every row, on the
// column's type, its domain's base type or a type it casts to implicitly,
// with the value on either side, in UPDATE and DELETE.
func TestLargeDMLCustomEqualsShapes(t *testing.T) {
	largeDMLSetup(t)
	setup := []string{
		"DROP TABLE IF EXISTS fx_op_text, fx_op_dom, fx_op_vc CASCADE",
		"DROP DOMAIN IF EXISTS fx_id CASCADE",
		"CREATE DOMAIN fx_id AS bigint",
		"CREATE TABLE fx_op_text (id text PRIMARY KEY, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"CREATE TABLE fx_op_dom (id fx_id PRIMARY KEY, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"CREATE TABLE fx_op_vc (id varchar(20) PRIMARY KEY, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"INSERT INTO fx_op_text SELECT g::text, 0 FROM generate_series(1, 150000) g",
		"INSERT INTO fx_op_dom SELECT g, 0 FROM generate_series(1, 150000) g",
		"INSERT INTO fx_op_vc SELECT g::text, 0 FROM generate_series(1, 150000) g",
		"ANALYZE fx_op_text, fx_op_dom, fx_op_vc",
		"CREATE OR REPLACE FUNCTION fx_true(text, int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true'",
		"CREATE OR REPLACE FUNCTION fx_true_rev(int, text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true'",
		"CREATE OR REPLACE FUNCTION fx_true_b(bigint, bytea) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true'",
		"CREATE OR REPLACE FUNCTION fx_true_t(text, bytea) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true'",
		"CREATE OPERATOR = (LEFTARG = text, RIGHTARG = int, FUNCTION = fx_true, RESTRICT = eqsel)",
		"CREATE OPERATOR = (LEFTARG = int, RIGHTARG = text, FUNCTION = fx_true_rev, RESTRICT = eqsel)",
		"CREATE OPERATOR = (LEFTARG = bigint, RIGHTARG = bytea, FUNCTION = fx_true_b, RESTRICT = eqsel)",
		"CREATE OPERATOR = (LEFTARG = text, RIGHTARG = bytea, FUNCTION = fx_true_t, RESTRICT = eqsel)",
	}
	if err := pgExec("guard", setup...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = pgExec("guard", "DROP TABLE IF EXISTS fx_op_text, fx_op_dom, fx_op_vc CASCADE", "DROP DOMAIN IF EXISTS fx_id CASCADE",
			"DROP OPERATOR IF EXISTS = (text, int)", "DROP OPERATOR IF EXISTS = (int, text)", "DROP OPERATOR IF EXISTS = (bigint, bytea)", "DROP OPERATOR IF EXISTS = (text, bytea)")
	})
	changed := "SELECT (SELECT count(*) FILTER (WHERE v <> 0) + (150000 - count(*)) FROM fx_op_text) + (SELECT count(*) FILTER (WHERE v <> 0) + (150000 - count(*)) FROM fx_op_dom) + (SELECT count(*) FILTER (WHERE v <> 0) + (150000 - count(*)) FROM fx_op_vc)"
	redteamLargeDML(t, nil, []string{
		"UPDATE fx_op_text SET v = 1 WHERE id = 5",
		"UPDATE fx_op_text SET v = 1 WHERE 5 = id",
		"DELETE FROM fx_op_text WHERE id = 5",
		"UPDATE fx_op_dom SET v = 1 WHERE id = '\\x00'::bytea",
		"UPDATE fx_op_vc SET v = 1 WHERE id = '\\x00'::bytea",
	}, changed, "UPDATE fx_op_text SET v = 0 WHERE v <> 0; UPDATE fx_op_dom SET v = 0 WHERE v <> 0; UPDATE fx_op_vc SET v = 0 WHERE v <> 0")
	// The real equality, with the user's operators present: estimated
	// (one row) and allowed.
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
	for _, q := range []string{"UPDATE fx_op_text SET v = 0 WHERE id = '5'", "UPDATE fx_op_dom SET v = 0 WHERE id = 5", "UPDATE fx_op_vc SET v = 0 WHERE id = '5'"} {
		if tag := mustExec(t, conn, q); tag.RowsAffected() != 1 {
			t.Errorf("%s: %s", q, tag)
		}
	}
}

// Triggers whose functions change 150,000 rows of fx_big, or a row of it
// per row of a 150,000-row statement: refused in a migration's session,
// nothing changed.
func TestLargeDMLTriggerShapes(t *testing.T) {
	fn := func(body string) string {
		return "CREATE OR REPLACE FUNCTION fx_trg_f() RETURNS trigger LANGUAGE plpgsql AS $$" + body + "$$"
	}
	for _, c := range []struct {
		name  string
		setup []string
		stmts []string
	}{
		{"before update, each row", []string{fn("BEGIN UPDATE fx_big SET v = v + 1 WHERE v = 0; RETURN NEW; END"),
			"CREATE TRIGGER fx_t BEFORE UPDATE ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_trg_f()"},
			[]string{"UPDATE fx_small SET v = 1 WHERE id = 1"}},
		{"after delete, statement", []string{fn("BEGIN DELETE FROM fx_big WHERE v = 0; RETURN NULL; END"),
			"CREATE TRIGGER fx_t AFTER DELETE ON fx_small FOR EACH STATEMENT EXECUTE FUNCTION fx_trg_f()"},
			[]string{"DELETE FROM fx_small WHERE id = 1", "DELETE FROM fx_small WHERE id = 12345"}},
		{"after insert, NEW in the body", []string{fn("BEGIN UPDATE fx_big SET v = NEW.v WHERE fx_big.id <> NEW.id; RETURN NEW; END"),
			"CREATE TRIGGER fx_t AFTER INSERT ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_trg_f()"},
			[]string{"INSERT INTO fx_small VALUES (100, 1)"}},
		{"calls a SQL function", []string{
			"CREATE OR REPLACE FUNCTION fx_touch(int) RETURNS void LANGUAGE sql AS 'UPDATE fx_big SET v = $1'",
			fn("BEGIN PERFORM fx_touch(NEW.v); RETURN NEW; END"),
			"CREATE TRIGGER fx_t AFTER UPDATE ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_trg_f()"},
			[]string{"UPDATE fx_small SET v = 1 WHERE id = 1"}},
		{"dynamic EXECUTE of a constant", []string{fn("BEGIN EXECUTE format('UPDATE %I SET v = 1', 'fx_big'); RETURN NEW; END"),
			"CREATE TRIGGER fx_t AFTER UPDATE ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_trg_f()"},
			[]string{"UPDATE fx_small SET v = 1 WHERE id = 1"}},
		{"two rows per row of a 60,000-row statement", []string{
			// The statement's own 60,000 rows are within the limit; the
			// trigger's 120,000 inserted rows are not.
			"DROP TABLE IF EXISTS fx_log", "CREATE TABLE fx_log (id bigint)",
			fn("BEGIN INSERT INTO fx_log VALUES (NEW.id), (NEW.id); RETURN NEW; END"),
			"CREATE TRIGGER fx_t AFTER UPDATE ON fx_big FOR EACH ROW EXECUTE FUNCTION fx_trg_f()",
		}, []string{"UPDATE fx_big SET v = 1 WHERE id <= 60000"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			effectsTables(t, c.setup...)
			redteamLargeDML(t, nil, c.stmts, effectsChanged, effectsReset)
		})
	}
}

// Triggers that change a few rows per row of a few rows run: an audit
// INSERT ... VALUES per row, an UPDATE by NEW's key, a disabled trigger.
func TestLargeDMLTriggerSmallAllowed(t *testing.T) {
	effectsTables(t,
		"CREATE TABLE IF NOT EXISTS fx_audit (id bigint, op text)",
		"CREATE OR REPLACE FUNCTION fx_audit_f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO fx_audit VALUES (NEW.id, TG_OP); UPDATE fx_other SET v = NEW.v WHERE id = NEW.id; RETURN NEW; END$$",
		"CREATE TRIGGER fx_a AFTER UPDATE OR INSERT ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_audit_f()",
		"CREATE OR REPLACE FUNCTION fx_big_f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN UPDATE fx_big SET v = v + 1; RETURN NEW; END$$",
		"CREATE TRIGGER fx_b AFTER UPDATE ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_big_f()",
		"ALTER TABLE fx_small DISABLE TRIGGER fx_b",
		// Fires only under session_replication_role = replica.
		"CREATE TRIGGER fx_c AFTER UPDATE ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_big_f()",
		"ALTER TABLE fx_small ENABLE REPLICA TRIGGER fx_c",
		// A foreign key's internal triggers are not user code.
		"CREATE TABLE IF NOT EXISTS fx_child (id bigint REFERENCES fx_small ON UPDATE CASCADE)",
	)
	t.Cleanup(func() { _ = pgExec("guard", "DROP TABLE IF EXISTS fx_child") })
	t.Cleanup(func() { _ = pgExec("guard", "DROP TABLE IF EXISTS fx_audit") })
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
	mustExec(t, conn, "UPDATE fx_small SET v = 1 WHERE id = 1")
	mustExec(t, conn, "UPDATE fx_small SET v = 2")
	mustExec(t, conn, "INSERT INTO fx_small VALUES (100, 1)")
}

// User functions called from a migration's statements, SQL and PL/pgSQL,
// nested, through CALL, in a WHERE and a VALUES list: refused when their
// bodies change 150,000 rows; a function that changes one row runs.
func TestLargeDMLFunctionShapes(t *testing.T) {
	effectsTables(t,
		"CREATE OR REPLACE FUNCTION fx_all() RETURNS int LANGUAGE plpgsql AS $$BEGIN UPDATE fx_big SET v = v + 1; RETURN 1; END$$",
		"CREATE OR REPLACE FUNCTION fx_outer() RETURNS int LANGUAGE sql AS 'SELECT fx_all()'",
		"CREATE OR REPLACE FUNCTION fx_del(lim int) RETURNS void LANGUAGE plpgsql AS $$BEGIN DELETE FROM fx_big WHERE id > lim; END$$",
		"CREATE OR REPLACE PROCEDURE fx_proc() LANGUAGE plpgsql AS $$BEGIN UPDATE fx_big SET v = 1 WHERE v = 0; END$$",
		"CREATE OR REPLACE FUNCTION fx_one(k bigint) RETURNS int LANGUAGE plpgsql AS $$BEGIN UPDATE fx_other SET v = v + 1 WHERE id = k; RETURN 1; END$$",
		"CREATE OR REPLACE FUNCTION fx_rec() RETURNS int LANGUAGE plpgsql AS $$BEGIN RETURN fx_rec(); END$$",
	)
	redteamLargeDML(t, nil, []string{
		"SELECT fx_outer()",
		"SELECT 1 WHERE fx_all() = 1",
		"SELECT fx_del(0)",
		"CALL fx_proc()",
		"INSERT INTO fx_other VALUES (100, fx_all())",
		"UPDATE fx_other SET v = fx_all() WHERE id = 1",
		"DO $$BEGIN PERFORM fx_all(); END$$",
		"DO $$BEGIN EXECUTE format('UPDATE %I SET v = %s', 'fx_big', '1'); END$$",
		"SELECT fx_one(id) FROM fx_big",
	}, effectsChanged, effectsReset)
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
	mustExec(t, conn, "SELECT fx_one(1)")
	mustExec(t, conn, "SELECT fx_del(149990)")
	mustExec(t, conn, "DO $$BEGIN EXECUTE format('UPDATE %I SET v = 1 WHERE id = %L', 'fx_other', '1'); END$$")
}

// In a migration's transaction block: a trigger's and a called function's
// bodies are estimated through the statement's SELECT form; a big change
// is refused, a small one runs.
func TestLargeDMLBodiesInTransaction(t *testing.T) {
	effectsTables(t,
		"CREATE OR REPLACE FUNCTION fx_all() RETURNS int LANGUAGE plpgsql AS $$BEGIN UPDATE fx_big SET v = v + 1; RETURN 1; END$$",
		"CREATE OR REPLACE FUNCTION fx_one(k bigint) RETURNS int LANGUAGE plpgsql AS $$BEGIN UPDATE fx_other SET v = v + 1 WHERE id = k; RETURN 1; END$$",
		"CREATE OR REPLACE FUNCTION fx_trg_f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN UPDATE fx_big SET v = v + 1 WHERE v = 0; RETURN NEW; END$$",
		"CREATE TRIGGER fx_t AFTER UPDATE ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_trg_f()",
	)
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
	ctx := context.Background()
	for _, q := range []string{"UPDATE fx_small SET v = 1 WHERE id = 1", "SELECT fx_all()", "INSERT INTO fx_other VALUES (100, fx_all())"} {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, q)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s: not refused: %v", q, err)
		}
		_ = tx.Rollback(ctx)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SELECT fx_one(1)", "INSERT INTO fx_other VALUES (101, fx_one(2))", "UPDATE fx_other SET v = fx_one(4) WHERE id = 3"} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	var n int64
	if err := direct.QueryRow(ctx, effectsChanged).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows changed (%v)", n, err)
	}
}

// Pipelined (in one Query, or behind a pending Sync), each statement is judged with the
// catalog once the session is idle: the trigger's and the function's
// bodies are read, not skipped. (Behind executed messages of one
// extended-protocol batch: TestLargeDMLBodiesBehindBatch.)
func TestLargeDMLBodiesPipelined(t *testing.T) {
	effectsTables(t,
		"CREATE OR REPLACE FUNCTION fx_all() RETURNS int LANGUAGE plpgsql AS $$BEGIN UPDATE fx_big SET v = v + 1; RETURN 1; END$$",
		"CREATE OR REPLACE FUNCTION fx_trg_f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN UPDATE fx_big SET v = v + 1 WHERE v = 0; RETURN NEW; END$$",
		"CREATE TRIGGER fx_t AFTER INSERT ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_trg_f()",
	)
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
	ctx := context.Background()
	for _, q := range []string{"INSERT INTO fx_small VALUES (100, 1)", "SELECT fx_all()"} {
		// One Query holding both.
		mr := conn.PgConn().Exec(ctx, "SELECT 1; "+q)
		_, err := mr.ReadAll()
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s: not refused: %v", q, err)
		}
		// A pipeline: the statement's Sync point comes while the first's
		// is pending.
		p := conn.PgConn().StartPipeline(ctx)
		p.SendQueryParams("SELECT pg_sleep(0.05)", nil, nil, nil, nil)
		p.SendPipelineSync()
		p.SendQueryParams(q, nil, nil, nil, nil)
		p.SendPipelineSync()
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		var refused bool
		for syncs := 0; syncs < 2; {
			r, err := p.GetResults()
			if errors.As(err, &pe) && pe.Code == "42501" {
				refused = true
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			switch r := r.(type) {
			case *pgconn.ResultReader:
				if _, err := r.Close(); errors.As(err, &pe) && pe.Code == "42501" {
					refused = true
				}
			case *pgconn.PipelineSync:
				syncs++
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if !refused {
			t.Errorf("%s pipelined: not refused", q)
		}
	}
	direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	var n int64
	if err := direct.QueryRow(ctx, effectsChanged).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows changed (%v)", n, err)
	}
}

// A migration's session keeps a table's rules and triggers between its
// statements (pgcatalog.SessionMemo), so it must forget them when it runs
// DDL or changes its search_path: a trigger it creates itself, or the
// same name in another schema, counts at once.
func TestLargeDMLMemoForgetsOnDDLAndSearchPath(t *testing.T) {
	effectsTables(t,
		"DROP SCHEMA IF EXISTS fx_s2 CASCADE", "CREATE SCHEMA fx_s2", "GRANT ALL ON SCHEMA fx_s2 TO PUBLIC",
		"CREATE TABLE fx_s2.fx_small (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0)",
		"INSERT INTO fx_s2.fx_small SELECT g, 0 FROM generate_series(1, 10) g",
		"CREATE FUNCTION fx_s2.fx_f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN UPDATE public.fx_big SET v = v + 1; RETURN NEW; END$$",
		"CREATE TRIGGER fx_s2_t AFTER UPDATE ON fx_s2.fx_small FOR EACH ROW EXECUTE FUNCTION fx_s2.fx_f()",
		"ANALYZE fx_s2.fx_small")
	t.Cleanup(func() { _ = pgExec("guard", "DROP SCHEMA IF EXISTS fx_s2 CASCADE") })
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
	direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	ctx := context.Background()
	changed := func() int64 {
		var n int64
		if err := direct.QueryRow(ctx, effectsChanged).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	refused := func(q string) {
		t.Helper()
		_, err := conn.Exec(ctx, q)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s: not refused (err %v)", q, err)
		}
		if n := changed(); n != 0 {
			t.Errorf("%s: %d rows of fx_big changed through pgguard", q, n)
			if err := pgExec("guard", effectsReset); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 3; i++ { // asked once, then kept
		mustExec(t, conn, "UPDATE fx_small SET v = v + 1 WHERE id = 1")
	}
	mustExec(t, conn, "SET search_path = fx_s2, public")
	refused("UPDATE fx_small SET v = v + 1 WHERE id = 1")
	mustExec(t, conn, "SET search_path = public")
	mustExec(t, conn, "UPDATE fx_small SET v = v + 1 WHERE id = 1")
	// (A function created in the migration is judged when it is created;
	// this one was made outside it.)
	mustExec(t, conn, "CREATE TRIGGER fx_mine AFTER UPDATE ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_s2.fx_f()")
	refused("UPDATE fx_small SET v = v + 1 WHERE id = 1")
}

// batchRefused sends stmts as one extended-protocol batch (Parse, Bind,
// Describe, Execute each, one Sync: pgjdbc's executeBatch, pgx's Batch in
// exec mode) and reports whether pgguard refused it (42501).
func batchRefused(t *testing.T, conn *pgx.Conn, stmts ...string) (bool, error) {
	t.Helper()
	b := &pgconn.Batch{}
	for _, q := range stmts {
		b.ExecParams(q, nil, nil, nil, nil)
	}
	_, err := conn.PgConn().ExecBatch(context.Background(), b).ReadAll()
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" {
		return true, nil
	}
	return false, err
}

// Behind an executed statement of its own extended-protocol batch, a
// migration's INSERT whose table's trigger or rule changes 150,000 rows,
// and a SELECT or CALL whose function or procedure does, are refused as
// they are when sent alone (they were judged without the catalog there:
// not at all); fx_big is left as it was. A batch whose trigger changes a
// row per row inserted runs.
func TestLargeDMLBodiesBehindBatch(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup []string
		stmts []string
	}{
		{"insert, trigger", []string{
			"CREATE OR REPLACE FUNCTION fx_trg_f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN UPDATE fx_big SET v = v + 1 WHERE v = 0; RETURN NEW; END$$",
			"CREATE TRIGGER fx_t AFTER INSERT ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_trg_f()"},
			[]string{"INSERT INTO fx_small VALUES (100, 1)"}},
		{"insert, rule", []string{"CREATE RULE fx_r AS ON INSERT TO fx_small DO ALSO UPDATE fx_big SET v = NEW.v"},
			[]string{"INSERT INTO fx_small VALUES (100, 1)"}},
		{"select and call", []string{
			"CREATE OR REPLACE FUNCTION fx_all() RETURNS int LANGUAGE plpgsql AS $$BEGIN UPDATE fx_big SET v = v + 1; RETURN 1; END$$",
			"CREATE OR REPLACE PROCEDURE fx_proc() LANGUAGE plpgsql AS $$BEGIN UPDATE fx_big SET v = 1 WHERE v = 0; END$$"},
			[]string{"SELECT fx_all()", "CALL fx_proc()", "INSERT INTO fx_other VALUES (100, fx_all())"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			effectsTables(t, c.setup...)
			t.Cleanup(func() { _ = pgExec("guard", "DROP TABLE IF EXISTS fx_new") })
			_, addr, _ := guardProxy(t, "", nil)
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
			direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
			for _, q := range c.stmts {
				for _, batch := range [][]string{{"SELECT 1", q}, {"BEGIN", "SELECT 1", q, "COMMIT"}, {"UPDATE fx_other SET v = 1 WHERE id = 1", "SELECT 2", q},
					// pgjdbc's executeBatch of a migration: DDL that adds
					// to the schema, then the data change.
					{"CREATE TABLE IF NOT EXISTS fx_new (id int)", "ALTER TABLE fx_other ADD COLUMN IF NOT EXISTS w int", "CREATE INDEX IF NOT EXISTS fx_new_i ON fx_new (id)", q}} {
					refused, err := batchRefused(t, conn, batch...)
					if !refused {
						t.Errorf("%q: not refused (%v)", batch, err)
					}
					// The refused batch's BEGIN leaves its transaction block open.
					if _, err := conn.PgConn().Exec(context.Background(), "ROLLBACK").ReadAll(); err != nil {
						t.Fatal(err)
					}
					var n int64
					if err := direct.QueryRow(context.Background(), effectsChanged).Scan(&n); err != nil || n != 0 {
						t.Errorf("%q: %d rows of fx_big changed (%v)", batch, n, err)
						_ = pgExec("guard", strings.Split(effectsReset, "; ")...)
					}
				}
			}
		})
	}
	// pgx's Batch in each of its modes (default_query_exec_mode: the
	// statements prepared or described in a batch of their own first,
	// executed unprepared in one batch, joined in one simple Query).
	t.Run("pgx Batch, every mode", func(t *testing.T) {
		effectsTables(t,
			"CREATE OR REPLACE FUNCTION fx_trg_f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN UPDATE fx_big SET v = v + 1 WHERE v = 0; RETURN NEW; END$$",
			"CREATE TRIGGER fx_t AFTER INSERT ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_trg_f()",
			"CREATE OR REPLACE FUNCTION fx_all() RETURNS int LANGUAGE plpgsql AS $$BEGIN UPDATE fx_big SET v = v + 1; RETURN 1; END$$")
		_, addr, _ := guardProxy(t, "", nil)
		direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
		ctx := context.Background()
		for _, mode := range []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"} {
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex&default_query_exec_mode="+mode)
			for _, q := range []string{"INSERT INTO fx_small VALUES (100, 1)", "SELECT fx_all()"} {
				b := &pgx.Batch{}
				b.Queue("SELECT 1")
				b.Queue(q)
				err := conn.SendBatch(ctx, b).Close()
				var pe *pgconn.PgError
				if !errors.As(err, &pe) || pe.Code != "42501" {
					t.Errorf("%s, %s: not refused (%v)", mode, q, err)
				}
				var n int64
				if err := direct.QueryRow(ctx, effectsChanged).Scan(&n); err != nil || n != 0 {
					t.Errorf("%s, %s: %d rows of fx_big changed (%v)", mode, q, n, err)
					_ = pgExec("guard", strings.Split(effectsReset, "; ")...)
				}
				_ = pgExec("guard", "DELETE FROM fx_small WHERE id = 100")
			}
		}
	})
	// A statement with parameters behind an executed one is estimated
	// with the values its Bind carries, as alone (before: refused as
	// unestimable whatever the values).
	t.Run("bound values", func(t *testing.T) {
		effectsTables(t)
		_, addr, _ := guardProxy(t, "", nil)
		conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
		run := func(v string) error {
			b := &pgconn.Batch{}
			b.ExecParams("SELECT 1", nil, nil, nil, nil)
			b.ExecParams("UPDATE fx_big SET v = 1 WHERE id > $1", [][]byte{[]byte(v)}, nil, nil, nil)
			_, err := conn.PgConn().ExecBatch(context.Background(), b).ReadAll()
			return err
		}
		if err := run("149990"); err != nil {
			t.Errorf("10 rows: %v", err)
		}
		var pe *pgconn.PgError
		if err := run("0"); !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("150,000 rows: not refused (%v)", err)
		}
		direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
		var n int64
		if err := direct.QueryRow(context.Background(), effectsChanged).Scan(&n); err != nil || n != 10 {
			t.Errorf("%d rows changed, want 10 (%v)", n, err)
		}
	})
	t.Run("small trigger runs", func(t *testing.T) {
		effectsTables(t,
			"CREATE TABLE IF NOT EXISTS fx_audit (id bigint, op text)",
			"CREATE OR REPLACE FUNCTION fx_audit_f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO fx_audit VALUES (NEW.id, TG_OP); RETURN NEW; END$$",
			"CREATE TRIGGER fx_a AFTER INSERT ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_audit_f()")
		t.Cleanup(func() { _ = pgExec("guard", "DROP TABLE IF EXISTS fx_audit") })
		_, addr, _ := guardProxy(t, "", nil)
		conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
		if refused, err := batchRefused(t, conn, "SELECT 1", "INSERT INTO fx_small VALUES (100, 1)", "INSERT INTO fx_small VALUES (101, 1)"); refused || err != nil {
			t.Fatalf("refused %v, err %v", refused, err)
		}
	})
}

// fxFunc is a PL/pgSQL trigger function named name with body.
func fxFunc(name, body string) string {
	return "CREATE OR REPLACE FUNCTION " + name + "() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN " + body + " END$$"
}

// Triggers fired by what a trigger's body changes, to the depth of called
// functions, their rows multiplied down the chain; a rule on a table a
// body changes: each refused in a migration's session, nothing changed.
func TestLargeDMLNestedTriggerShapes(t *testing.T) {
	logs := []string{"DROP TABLE IF EXISTS fx_log, fx_log2", "CREATE TABLE fx_log (id bigint)", "CREATE TABLE fx_log2 (id bigint)"}
	for _, c := range []struct {
		name  string
		setup []string
		stmts []string
	}{
		{"second level updates everything", []string{
			fxFunc("fx_t1", "UPDATE fx_other SET v = NEW.v WHERE id = NEW.id; RETURN NEW;"),
			fxFunc("fx_t2", "UPDATE fx_big SET v = v + 1; RETURN NEW;"),
			"CREATE TRIGGER fx_a AFTER UPDATE ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_t1()",
			"CREATE TRIGGER fx_b AFTER UPDATE ON fx_other FOR EACH STATEMENT EXECUTE FUNCTION fx_t2()"},
			[]string{"UPDATE fx_small SET v = 1 WHERE id = 1", "INSERT INTO fx_other SELECT 1000 + g, 0 FROM generate_series(1, 3) g ON CONFLICT (id) DO UPDATE SET v = 7"}},
		{"third level, insert fires delete", []string{
			"CREATE TABLE IF NOT EXISTS fx_mid (id bigint)",
			fxFunc("fx_t1", "UPDATE fx_other SET v = NEW.v WHERE id = NEW.id; RETURN NEW;"),
			fxFunc("fx_t2", "INSERT INTO fx_mid VALUES (NEW.id); RETURN NEW;"),
			fxFunc("fx_t3", "DELETE FROM fx_big WHERE v = 0; RETURN NEW;"),
			"CREATE TRIGGER fx_a AFTER UPDATE ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_t1()",
			"CREATE TRIGGER fx_b AFTER UPDATE ON fx_other FOR EACH ROW EXECUTE FUNCTION fx_t2()",
			"CREATE TRIGGER fx_c AFTER INSERT ON fx_mid FOR EACH ROW EXECUTE FUNCTION fx_t3()"},
			[]string{"UPDATE fx_small SET v = 1 WHERE id = 1"}},
		{"rows multiply down the chain", append(logs,
			// 60,000 rows updated, one logged per row (60,000), two
			// more per logged row (120,000 rows of fx_log2).
			fxFunc("fx_t1", "INSERT INTO fx_log VALUES (NEW.id); RETURN NEW;"),
			fxFunc("fx_t2", "INSERT INTO fx_log2 VALUES (NEW.id), (NEW.id); RETURN NEW;"),
			"CREATE TRIGGER fx_a AFTER UPDATE ON fx_big FOR EACH ROW EXECUTE FUNCTION fx_t1()",
			"CREATE TRIGGER fx_b AFTER INSERT ON fx_log FOR EACH ROW EXECUTE FUNCTION fx_t2()"),
			[]string{"UPDATE fx_big SET v = 1 WHERE id <= 60000"}},
		{"rule on the table a trigger changes", []string{
			fxFunc("fx_t1", "UPDATE fx_other SET v = NEW.v WHERE id = NEW.id; RETURN NEW;"),
			"CREATE TRIGGER fx_a AFTER UPDATE ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_t1()",
			"CREATE RULE fx_r AS ON UPDATE TO fx_other DO ALSO UPDATE fx_big SET v = v + 1"},
			[]string{"UPDATE fx_small SET v = 1 WHERE id = 1"}},
		{"function a trigger calls fires a trigger", []string{
			"CREATE OR REPLACE FUNCTION fx_touch(k bigint) RETURNS void LANGUAGE sql AS 'UPDATE fx_other SET v = 1 WHERE id = k'",
			fxFunc("fx_t1", "PERFORM fx_touch(NEW.id); RETURN NEW;"),
			fxFunc("fx_t2", "UPDATE fx_big SET v = v + 1; RETURN NEW;"),
			"CREATE TRIGGER fx_a AFTER UPDATE ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_t1()",
			"CREATE TRIGGER fx_b AFTER UPDATE ON fx_other FOR EACH ROW EXECUTE FUNCTION fx_t2()"},
			[]string{"UPDATE fx_small SET v = 1 WHERE id = 1", "SELECT fx_touch(1)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			effectsTables(t, c.setup...)
			t.Cleanup(func() { _ = pgExec("guard", "DROP TABLE IF EXISTS fx_log, fx_log2, fx_mid") })
			redteamLargeDML(t, nil, c.stmts, effectsChanged+" + (SELECT count(*) FROM fx_other WHERE v <> 0 AND id <= 10)"+
				" + (SELECT count(*) FROM pg_class WHERE relname = 'fx_log2' AND pg_relation_size(oid) > 0)", effectsReset)
		})
	}
}

// Chains of small changes run: an audit row per row logged again by the
// audit table's own trigger, whose table's rule updates a row by key, and
// two triggers that fire each other, stopped by pg_trigger_depth()
// (pgguard reads each function once).
func TestLargeDMLNestedTriggersSmallAllowed(t *testing.T) {
	effectsTables(t,
		"DROP TABLE IF EXISTS fx_log, fx_log2", "CREATE TABLE fx_log (id bigint)", "CREATE TABLE fx_log2 (id bigint)",
		fxFunc("fx_t1", "INSERT INTO fx_log VALUES (NEW.id); RETURN NEW;"),
		fxFunc("fx_t2", "INSERT INTO fx_log2 VALUES (NEW.id); RETURN NEW;"),
		"CREATE TRIGGER fx_a AFTER UPDATE ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_t1()",
		"CREATE TRIGGER fx_b AFTER INSERT ON fx_log FOR EACH ROW EXECUTE FUNCTION fx_t2()",
		fxFunc("fx_ping", "IF pg_trigger_depth() < 4 THEN UPDATE fx_small SET v = v + 1 WHERE id = NEW.id; END IF; RETURN NEW;"),
		fxFunc("fx_pong", "IF pg_trigger_depth() < 4 THEN UPDATE fx_other SET v = v + 1 WHERE id = NEW.id; END IF; RETURN NEW;"),
		"CREATE TRIGGER fx_c AFTER UPDATE ON fx_other FOR EACH ROW EXECUTE FUNCTION fx_ping()",
		"CREATE TRIGGER fx_d AFTER UPDATE ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_pong()",
		// A rule on a table a trigger inserts into, which changes a row
		// by key: EXPLAIN of the trigger's INSERT sizes it.
		"CREATE RULE fx_r AS ON INSERT TO fx_log2 DO ALSO UPDATE fx_other SET v = v + 1 WHERE id = NEW.id")
	t.Cleanup(func() { _ = pgExec("guard", "DROP TABLE IF EXISTS fx_log, fx_log2") })
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
	mustExec(t, conn, "UPDATE fx_small SET v = 2")
	mustExec(t, conn, "UPDATE fx_other SET v = 2 WHERE id = 3")
	var n int64
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM fx_log2").Scan(&n); err != nil || n == 0 {
		t.Fatalf("the chain did not run: %d rows in fx_log2 (%v)", n, err)
	}
}

// MERGE fires its target's triggers for each kind of its actions: a
// trigger that changes 150,000 rows, or a row of a log per row of a
// 60,000-row MERGE twice over, is refused in a migration's session.
func TestLargeDMLMergeTriggerShapes(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup []string
		stmts []string
	}{
		{"update action, row trigger", []string{
			fxFunc("fx_t1", "UPDATE fx_big SET v = v + 1 WHERE v = 0; RETURN NEW;"),
			"CREATE TRIGGER fx_a AFTER UPDATE ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_t1()"},
			[]string{"MERGE INTO fx_small USING (VALUES (1)) s(id) ON fx_small.id = s.id WHEN MATCHED THEN UPDATE SET v = 1"}},
		{"insert action, row trigger", []string{
			fxFunc("fx_t1", "UPDATE fx_big SET v = v + 1; RETURN NEW;"),
			"CREATE TRIGGER fx_a BEFORE INSERT ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_t1()"},
			[]string{"MERGE INTO fx_small USING (VALUES (500)) s(id) ON fx_small.id = s.id WHEN MATCHED THEN UPDATE SET v = 1 WHEN NOT MATCHED THEN INSERT VALUES (s.id, 1)"}},
		{"delete action, statement trigger", []string{
			fxFunc("fx_t1", "DELETE FROM fx_big; RETURN NULL;"),
			"CREATE TRIGGER fx_a AFTER DELETE ON fx_small FOR EACH STATEMENT EXECUTE FUNCTION fx_t1()"},
			[]string{"MERGE INTO fx_small USING (VALUES (2)) s(id) ON fx_small.id = s.id WHEN MATCHED THEN DELETE"}},
		{"two log rows per merged row", []string{
			"DROP TABLE IF EXISTS fx_log", "CREATE TABLE fx_log (id bigint)",
			fxFunc("fx_t1", "INSERT INTO fx_log VALUES (NEW.id), (NEW.id); RETURN NEW;"),
			"CREATE TRIGGER fx_a AFTER UPDATE ON fx_big FOR EACH ROW EXECUTE FUNCTION fx_t1()"},
			[]string{"MERGE INTO fx_big USING (SELECT g FROM generate_series(1, 60000) g) s(id) ON fx_big.id = s.id WHEN MATCHED THEN UPDATE SET v = 1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			effectsTables(t, c.setup...)
			t.Cleanup(func() { _ = pgExec("guard", "DROP TABLE IF EXISTS fx_log") })
			redteamLargeDML(t, nil, c.stmts, effectsChanged+" + (SELECT count(*) FROM fx_small WHERE v <> 0 OR id > 10) + (10 - (SELECT count(*) FROM fx_small WHERE id <= 10))", effectsReset)
		})
	}
	// An audit row per merged row of a small table runs.
	effectsTables(t, "DROP TABLE IF EXISTS fx_log", "CREATE TABLE fx_log (id bigint)",
		fxFunc("fx_t1", "INSERT INTO fx_log VALUES (NEW.id); RETURN NEW;"),
		"CREATE TRIGGER fx_a AFTER UPDATE OR INSERT ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_t1()")
	t.Cleanup(func() { _ = pgExec("guard", "DROP TABLE IF EXISTS fx_log") })
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
	mustExec(t, conn, "MERGE INTO fx_small USING (VALUES (1), (500)) s(id) ON fx_small.id = s.id WHEN MATCHED THEN UPDATE SET v = 1 WHEN NOT MATCHED THEN INSERT VALUES (s.id, 1)")
	// In a transaction block too (the MERGE's rows estimated as a SELECT):
	// the audit trigger's MERGE runs, one whose trigger updates fx_big is
	// refused.
	if err := pgExec("guard", fxFunc("fx_t2", "UPDATE fx_big SET v = v + 1; RETURN NEW;"),
		"CREATE TRIGGER fx_b AFTER DELETE ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_t2()"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "MERGE INTO fx_small USING (VALUES (2)) s(id) ON fx_small.id = s.id WHEN MATCHED THEN UPDATE SET v = 2"); err != nil {
		t.Errorf("audit MERGE in a transaction: %v", err)
	}
	_, err = tx.Exec(ctx, "MERGE INTO fx_small USING (VALUES (3)) s(id) ON fx_small.id = s.id WHEN MATCHED THEN DELETE")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Errorf("MERGE whose DELETE trigger updates fx_big, in a transaction: not refused (%v)", err)
	}
	_ = tx.Rollback(ctx)
}

// SQL-standard bodies (BEGIN ATOMIC ... END, RETURN expr), whose prosrc is
// empty: read through pg_get_function_sqlbody and judged like SQL bodies,
// arguments (which it writes qualified by the function's name) standing
// for the constants the call passes. The same functions changing a few
// rows run.
func TestLargeDMLSQLStandardBodyShapes(t *testing.T) {
	effectsTables(t,
		"CREATE OR REPLACE FUNCTION fx_all() RETURNS int LANGUAGE plpgsql AS $$BEGIN UPDATE fx_big SET v = v + 1; RETURN 1; END$$",
		"CREATE OR REPLACE FUNCTION fx_atomic() RETURNS int LANGUAGE sql BEGIN ATOMIC UPDATE fx_big SET v = v + 1; SELECT 1; END",
		"CREATE OR REPLACE FUNCTION fx_atomic_arg(lim int, \"user\" int) RETURNS void LANGUAGE sql BEGIN ATOMIC DELETE FROM fx_big WHERE id > lim AND v = \"user\"; END",
		"CREATE OR REPLACE PROCEDURE fx_atomic_proc(lim int) LANGUAGE sql BEGIN ATOMIC UPDATE fx_big SET v = 1 WHERE id > lim; END",
		"CREATE OR REPLACE FUNCTION fx_ret() RETURNS int LANGUAGE sql RETURN fx_all() + 1",
		"CREATE OR REPLACE FUNCTION fx_ret_one(k bigint) RETURNS int LANGUAGE sql RETURN k + 1",
	)
	redteamLargeDML(t, nil, []string{
		"SELECT fx_atomic()",
		"SELECT fx_atomic_arg(0, 0)",
		"CALL fx_atomic_proc(0)",
		"SELECT fx_ret()",
		"UPDATE fx_small SET v = fx_atomic() WHERE id = 1",
	}, effectsChanged, effectsReset)
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
	mustExec(t, conn, "SELECT fx_atomic_arg(149990, 0)")
	mustExec(t, conn, "CALL fx_atomic_proc(149995)")
	mustExec(t, conn, "SELECT fx_ret_one(1)")
}

// Functions an ALTER TABLE computes for each row of its table (measured
// on PostgreSQL 15: a volatile DEFAULT of ADD COLUMN, a CHECK validated
// now, the USING of ALTER COLUMN ... TYPE run once per row) and those of
// CREATE TABLE AS and UPDATE ... SET c = f(): refused by large-dml when a
// run changes 150,000 rows, or 30 rows per row of a 5,000-row table
// (150,000 in all); nothing changed. The rules that refuse a rewrite
// (add-column-volatile-default, alter-column-type) are off, so that the
// refusal is large-dml's own. The same calls changing a row of a 10-row
// table, a CHECK added NOT VALID (not run now) and an index on an
// IMMUTABLE function run.
func TestLargeDMLDDLCallShapes(t *testing.T) {
	effectsTables(t,
		"DROP TABLE IF EXISTS fx_log, fx_mid, fx_cta",
		"CREATE TABLE fx_log (id bigint)",
		"CREATE TABLE fx_mid (id bigint, v int NOT NULL DEFAULT 0)",
		"INSERT INTO fx_mid SELECT g, 0 FROM generate_series(1, 5000) g",
		"ANALYZE fx_mid",
		"CREATE OR REPLACE FUNCTION fx_all() RETURNS int LANGUAGE plpgsql AS $$BEGIN UPDATE fx_big SET v = v + 1; RETURN 1; END$$",
		"CREATE OR REPLACE FUNCTION fx_log30() RETURNS int LANGUAGE plpgsql AS $$BEGIN INSERT INTO fx_log SELECT g FROM generate_series(1, 30) g; RETURN 1; END$$",
		"CREATE OR REPLACE FUNCTION fx_one(k bigint) RETURNS int LANGUAGE plpgsql AS $$BEGIN UPDATE fx_other SET v = v + 1 WHERE id = k; RETURN 1; END$$",
		"CREATE OR REPLACE FUNCTION fx_imm(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 + 1'",
	)
	t.Cleanup(func() { _ = pgExec("guard", "DROP TABLE IF EXISTS fx_log, fx_mid, fx_cta") })
	changed := effectsChanged + " + (SELECT count(*) FROM fx_log)" +
		" + (SELECT count(*) FROM pg_class WHERE relname = 'fx_cta')" +
		" + (SELECT count(*) FROM pg_attribute WHERE attrelid IN ('fx_small'::regclass, 'fx_mid'::regclass) AND (attnum > 2 OR attname = 'v' AND atttypid <> 'int4'::regtype) AND NOT attisdropped)" +
		" + (SELECT count(*) FROM pg_constraint WHERE conrelid IN ('fx_small'::regclass, 'fx_mid'::regclass) AND contype = 'c')"
	_, addr, _ := guardProxy(t, "rules:\n  add-column-volatile-default: off\n  alter-column-type: off\n", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
	direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	ctx := context.Background()
	for _, q := range []string{
		"ALTER TABLE fx_small ADD COLUMN c int DEFAULT fx_all()",
		"ALTER TABLE fx_small ADD COLUMN c int CHECK (fx_all() > 0)",
		"ALTER TABLE fx_small ADD CONSTRAINT fx_ck CHECK (v + fx_all() > 0)",
		"ALTER TABLE fx_small ALTER COLUMN v TYPE bigint USING (v + fx_all())",
		"ALTER TABLE fx_mid ADD COLUMN c int DEFAULT fx_log30()",
		"ALTER TABLE fx_mid ALTER COLUMN v TYPE bigint USING (v + fx_log30())",
		"CREATE TABLE fx_cta AS SELECT fx_log30() FROM fx_mid",
		"UPDATE fx_mid SET v = fx_log30()",
	} {
		_, err := conn.Exec(ctx, q)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" || !strings.Contains(pe.Message, "large-dml") {
			t.Errorf("%s: not refused by large-dml (%v)", q, err)
		}
		var n int64
		if err := direct.QueryRow(ctx, changed).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%s: %d changes through pgguard (%v)", q, n, err)
		}
	}
	mustExec(t, conn, "ALTER TABLE fx_small ADD COLUMN c int DEFAULT fx_one(1)")
	mustExec(t, conn, "ALTER TABLE fx_small ADD CONSTRAINT fx_ck CHECK (v + fx_all() > 0) NOT VALID")
	mustExec(t, conn, "CREATE INDEX fx_small_imm ON fx_small ((fx_imm(v)))")
}

// queryCounter relays pgguard's upstream connections to PostgreSQL and
// counts pgguard's own queries on them (the Parse of its statement
// pgguard_internal, enforce/internal.go): each is a catalog question, a
// round trip.
type queryCounter struct {
	addr    string
	queries atomic.Int64
}

func countQueries(t *testing.T, upstream string) *queryCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	qc := &queryCounter{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			go func() { _, _ = io.Copy(c, s); c.Close() }()
			go func() {
				defer s.Close()
				r := bufio.NewReader(c)
				var hdr [5]byte
				// The startup packet (and an SSLRequest before it) has no
				// type byte.
				for started := false; !started; {
					if _, err := io.ReadFull(r, hdr[:4]); err != nil {
						return
					}
					n := int(binary.BigEndian.Uint32(hdr[:4]))
					body := make([]byte, n-4)
					if _, err := io.ReadFull(r, body); err != nil {
						return
					}
					started = n < 8 || binary.BigEndian.Uint32(body[:4]) != 80877103
					if _, err := s.Write(append(hdr[:4:4], body...)); err != nil {
						return
					}
				}
				for {
					if _, err := io.ReadFull(r, hdr[:]); err != nil {
						return
					}
					n := int(binary.BigEndian.Uint32(hdr[1:]))
					body := make([]byte, n-4)
					if _, err := io.ReadFull(r, body); err != nil {
						return
					}
					if hdr[0] == 'P' && bytes.HasPrefix(body, []byte("pgguard_internal\x00")) {
						qc.queries.Add(1)
					}
					if _, err := s.Write(append(hdr[:5:5], body...)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return qc
}

// An application's batches (Parse, Bind, Execute of each statement, one
// Sync) cost pgguard no catalog question, triggers and all: the look
// ahead past executed statements is a migration's only. A migration's
// session asks ahead, once per batch at most for this shape (the answers
// about fx_small's triggers are kept for the session).
func TestLargeDMLBatchApplicationAsksNothing(t *testing.T) {
	effectsTables(t,
		"CREATE TABLE IF NOT EXISTS fx_audit (id bigint, op text)",
		"CREATE OR REPLACE FUNCTION fx_audit_f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO fx_audit VALUES (NEW.id, TG_OP); RETURN NEW; END$$",
		"CREATE TRIGGER fx_a AFTER INSERT ON fx_small FOR EACH ROW EXECUTE FUNCTION fx_audit_f()")
	t.Cleanup(func() { _ = pgExec("guard", "DROP TABLE IF EXISTS fx_audit") })
	var qc *queryCounter
	_, addr, _ := guardProxy(t, "", func(c *Config) {
		qc = countQueries(t, c.Targets[0].Upstream)
		c.Targets[0].Upstream = qc.addr
	})
	const batches = 20
	asked := func(app string, first int) int64 {
		conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name="+app)
		if refused, err := batchRefused(t, conn, "SELECT 1"); refused || err != nil {
			t.Fatalf("warm-up: %v %v", refused, err)
		}
		before, start := qc.queries.Load(), time.Now()
		for i := 0; i < batches; i++ {
			id := strconv.Itoa(first + i)
			if refused, err := batchRefused(t, conn, "SELECT 1", "INSERT INTO fx_small VALUES ("+id+", 0)", "UPDATE fx_other SET v = v + 1 WHERE id = 1"); refused || err != nil {
				t.Fatalf("%s: refused %v, err %v", app, refused, err)
			}
		}
		t.Logf("%s: %d batches in %v", app, batches, time.Since(start))
		return qc.queries.Load() - before
	}
	app := asked("shop", 1000)
	mig := asked("knex", 2000)
	t.Logf("catalog questions for %d batches: application %d, migration %d", batches, app, mig)
	if app != 0 {
		t.Errorf("an application's %d batches cost %d catalog questions, want 0", batches, app)
	}
	if mig == 0 {
		t.Errorf("a migration's batches were judged without the catalog")
	}
}
