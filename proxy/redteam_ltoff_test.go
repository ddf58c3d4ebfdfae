package proxy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// Red team (issue 20): a statement that turns lock_timeout off as it runs,
// by calling user code (a function or a view created without pgguard,
// which calls set_config), before an ALTER TABLE in the same Query.
// pgguard sets its lock_timeout once, before the Query; the call then
// sets 0 at session level, and the ALTER waits behind an open reader for
// as long as it stays open, with every later query on the table queued
// behind it. set_config(...) written in the Query itself is refused
// (rule lock-timeout); the same call one function away is not.
//
// Now every statement before a DDL in a Query has the code it runs read
// from the catalog (policy.UserCodeCatalog: functions it calls, a view's
// query, a DEFAULT, a trigger, what they call), and a Query where that
// code may change lock_timeout is refused with the recipe (42501); code
// that cannot (or that a function's own SET lock_timeout clause confines:
// PostgreSQL restores it at the function's return) lets the DDL run with
// pgguard's lock_timeout, which the server enforces (55P03).
func TestRedteamLockTimeoutTurnedOffByUserCode(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	if err := pgExec("guard",
		"DROP TABLE IF EXISTS rt20b_lt, rt20b_ltd, rt20b_ltt CASCADE",
		"CREATE TABLE rt20b_lt (id int)",
		"GRANT ALL ON rt20b_lt TO PUBLIC",
		"CREATE OR REPLACE FUNCTION rt20b_lt_off() RETURNS text LANGUAGE sql AS $$ SELECT set_config('lock_timeout', '0', false) $$",
		"CREATE OR REPLACE VIEW rt20b_lt_view AS SELECT set_config('lock_timeout', '0', false) AS lt",
		"CREATE OR REPLACE FUNCTION rt20b_lt_perform() RETURNS int LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('lock_timeout', '0', false); RETURN 1; END $$",
		"CREATE OR REPLACE FUNCTION rt20b_lt_set() RETURNS int LANGUAGE plpgsql AS $$ BEGIN SET lock_timeout = 0; RETURN 1; END $$",
		"CREATE OR REPLACE FUNCTION rt20b_lt_outer() RETURNS int LANGUAGE sql AS $$ SELECT rt20b_lt_set() + 1 $$",
		"CREATE OR REPLACE FUNCTION rt20b_lt_dyn() RETURNS int LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'SET lock' || '_timeout = 0'; RETURN 1; END $$",
		"CREATE OR REPLACE VIEW rt20b_lt_view2 AS SELECT rt20b_lt_outer() AS x",
		"CREATE TABLE rt20b_ltd (id int, v int DEFAULT rt20b_lt_perform())",
		"CREATE TABLE rt20b_ltt (id int)",
		"CREATE OR REPLACE FUNCTION rt20b_lt_trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM rt20b_lt_set(); RETURN NEW; END $$",
		"CREATE TRIGGER rt20b_ltt_trg BEFORE INSERT ON rt20b_ltt FOR EACH ROW EXECUTE FUNCTION rt20b_lt_trg()",
		"CREATE OR REPLACE PROCEDURE rt20b_lt_proc() LANGUAGE plpgsql AS $$ BEGIN SET lock_timeout = 0; END $$",
		// The reverse: nothing that changes lock_timeout, or a change
		// that PostgreSQL undoes when the function returns.
		"CREATE OR REPLACE FUNCTION rt20b_lt_harmless() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$",
		"CREATE OR REPLACE FUNCTION rt20b_lt_confined() RETURNS int LANGUAGE plpgsql SET lock_timeout = 0 AS $$ BEGIN RETURN 1; END $$",
		// A function's SET clause does not confine a session-level
		// set_config in its body: PostgreSQL keeps that one after it
		// returns (the ALTER then waits with no limit: checked without
		// pgguard's refusal, 20s).
		"CREATE OR REPLACE FUNCTION rt20b_lt_clause_body() RETURNS int LANGUAGE plpgsql SET lock_timeout = '1s' AS $$ BEGIN PERFORM set_config('lock_timeout', '0', false); RETURN 1; END $$",
	); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pgExec("guard", "DROP TABLE IF EXISTS rt20b_lt, rt20b_ltd, rt20b_ltt CASCADE", "DROP VIEW IF EXISTS rt20b_lt_view, rt20b_lt_view2",
			"DROP FUNCTION IF EXISTS rt20b_lt_off(), rt20b_lt_perform(), rt20b_lt_outer(), rt20b_lt_set(), rt20b_lt_dyn(), rt20b_lt_trg(), rt20b_lt_harmless(), rt20b_lt_confined(), rt20b_lt_clause_body()",
			"DROP PROCEDURE IF EXISTS rt20b_lt_proc()")
	})
	// What the server keeps after each function with a SET clause
	// returns, directly: the clause is restored, the body's set_config
	// is not.
	direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	for fn, want := range map[string]string{"rt20b_lt_confined": "5s", "rt20b_lt_clause_body": "0"} {
		var got string
		mustExec(t, direct, "SET lock_timeout = '5s'")
		mustExec(t, direct, "SELECT "+fn+"()")
		if err := direct.QueryRow(ctx, "SHOW lock_timeout").Scan(&got); err != nil || got != want {
			t.Errorf("after %s() lock_timeout is %q (%v); want %q", fn, got, err, want)
		}
	}
	const alter = "; ALTER TABLE rt20b_lt ADD COLUMN IF NOT EXISTS q int"
	for _, c := range []struct {
		before string
		want   string // 42501: refused; 55P03: ran with pgguard's lock_timeout
	}{
		{"SELECT rt20b_lt_off()", "42501"},
		{"SELECT * FROM rt20b_lt_view", "42501"},
		{"SELECT rt20b_lt_perform()", "42501"},
		{"SELECT rt20b_lt_set()", "42501"},
		{"SELECT rt20b_lt_outer()", "42501"},
		{"SELECT * FROM rt20b_lt_view2", "42501"},
		{"SELECT public.rt20b_lt_set()", "42501"},
		{"SELECT 1 WHERE rt20b_lt_set() > 0", "42501"},
		{"SELECT rt20b_lt_dyn()", "42501"},
		{"INSERT INTO rt20b_ltd (id) VALUES (1)", "42501"},
		{"INSERT INTO rt20b_ltt VALUES (1)", "42501"},
		{"CALL rt20b_lt_proc()", "42501"},
		{"SELECT rt20b_lt_clause_body()", "42501"},
		{"SELECT rt20b_lt_harmless()", "55P03"},
		{"SELECT rt20b_lt_confined()", "55P03"},
		{"INSERT INTO rt20b_lt VALUES (1)", "55P03"},
	} {
		q := c.before + alter
		t.Run(q, func(t *testing.T) {
			reader := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
			mustExec(t, reader, "BEGIN")
			mustExec(t, reader, "SELECT * FROM rt20b_lt")
			defer reader.Exec(ctx, "ROLLBACK")
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			start := time.Now()
			_, err := conn.Exec(tctx, q)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != c.want {
				t.Fatalf("%s behind an open reader: %v after %v; want %s", q, err, time.Since(start).Round(time.Second), c.want)
			}
			if pe.Code == "42501" {
				t.Logf("%s\n%s\n%s", pe.Message, pe.Detail, pe.Hint)
				if strings.Contains(pe.Message, "lock-timeout") && !strings.Contains(pe.Hint, "own") {
					t.Errorf("refusal without the recipe: %q", pe.Hint)
				}
			}
		})
	}
}
