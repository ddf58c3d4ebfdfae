package proxy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestRedteamLockTimeoutOffByCodeWithoutCall: code that runs in a Query
// before its ALTER TABLE and turns lock_timeout off (set_config(...,
// false) keeps the change after it returns) makes the ALTER wait behind
// an open reader with no limit; pgguard refuses such a Query
// (TestRedteamLockTimeoutTurnedOffByUserCode) when it finds the code:
// the functions it calls, views, defaults, checks, triggers. Shapes here
// run a function without calling it by name: an operator, a cast, a
// domain's CHECK, TABLE of a view.
func TestRedteamLockTimeoutOffByCodeWithoutCall(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	if err := pgExec("guard",
		"DROP TABLE IF EXISTS rt20d_lt, rt20d_ltdom CASCADE",
		"DROP DOMAIN IF EXISTS rt20d_lt_d",
		"DROP TYPE IF EXISTS rt20d_lt_ty CASCADE",
		"CREATE TABLE rt20d_lt (id int)",
		"CREATE OR REPLACE FUNCTION rt20d_lt_off2(int, int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('lock_timeout', '0', false); RETURN $1; END $$",
		"CREATE OR REPLACE FUNCTION rt20d_lt_off1(int) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('lock_timeout', '0', false); RETURN true; END $$",
		"DROP OPERATOR IF EXISTS #~# (int, int)",
		"CREATE OPERATOR #~# (LEFTARG = int, RIGHTARG = int, FUNCTION = rt20d_lt_off2)",
		"CREATE TYPE rt20d_lt_ty AS (a int)",
		"CREATE OR REPLACE FUNCTION rt20d_lt_cast(int) RETURNS rt20d_lt_ty LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('lock_timeout', '0', false); RETURN ROW($1); END $$",
		"CREATE CAST (int AS rt20d_lt_ty) WITH FUNCTION rt20d_lt_cast(int)",
		"CREATE DOMAIN rt20d_lt_d AS int CHECK (rt20d_lt_off1(VALUE))",
		"CREATE TABLE rt20d_ltdom (v rt20d_lt_d)",
		"CREATE OR REPLACE VIEW rt20d_lt_v AS SELECT rt20d_lt_off1(1) AS x",
	); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pgExec("guard", "DROP TABLE IF EXISTS rt20d_lt, rt20d_ltdom CASCADE", "DROP VIEW IF EXISTS rt20d_lt_v", "DROP DOMAIN IF EXISTS rt20d_lt_d",
			"DROP OPERATOR IF EXISTS #~# (int, int)", "DROP TYPE IF EXISTS rt20d_lt_ty CASCADE",
			"DROP FUNCTION IF EXISTS rt20d_lt_off2(int, int), rt20d_lt_off1(int), rt20d_lt_cast(int)")
	})
	const alter = "; ALTER TABLE rt20d_lt ADD COLUMN IF NOT EXISTS q int"
	for _, before := range []string{
		"SELECT 1 #~# 2",
		"SELECT 1::rt20d_lt_ty",
		"INSERT INTO rt20d_ltdom VALUES (1)",
		"TABLE rt20d_lt_v",
	} {
		q := before + alter
		t.Run(before, func(t *testing.T) {
			reader := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
			mustExec(t, reader, "BEGIN")
			mustExec(t, reader, "SELECT * FROM rt20d_lt")
			defer reader.Exec(ctx, "ROLLBACK")
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			start := time.Now()
			_, err := conn.Exec(tctx, q)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "42501" {
				t.Fatalf("%s behind an open reader: %v after %v; want pgguard's refusal (the code turns lock_timeout off)", q, err, time.Since(start).Round(time.Second))
			}
		})
	}
}
