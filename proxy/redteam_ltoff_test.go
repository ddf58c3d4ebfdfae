package proxy

import (
	"context"
	"errors"
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
func TestRedteamLockTimeoutTurnedOffByUserCode(t *testing.T) {
	t.Skip("redteam: SELECT f(); ALTER TABLE ... in one Query, where f (or a view) runs set_config('lock_timeout', '0', false), runs the ALTER without lock_timeout")
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	if err := pgExec("guard",
		"DROP TABLE IF EXISTS rt20b_lt CASCADE",
		"CREATE TABLE rt20b_lt (id int)",
		"GRANT ALL ON rt20b_lt TO PUBLIC",
		"CREATE OR REPLACE FUNCTION rt20b_lt_off() RETURNS text LANGUAGE sql AS $$ SELECT set_config('lock_timeout', '0', false) $$",
		"CREATE OR REPLACE VIEW rt20b_lt_view AS SELECT set_config('lock_timeout', '0', false) AS lt",
	); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pgExec("guard", "DROP TABLE IF EXISTS rt20b_lt CASCADE", "DROP VIEW IF EXISTS rt20b_lt_view", "DROP FUNCTION IF EXISTS rt20b_lt_off()")
	})
	for _, q := range []string{
		"SELECT rt20b_lt_off(); ALTER TABLE rt20b_lt ADD COLUMN IF NOT EXISTS q int",
		"SELECT * FROM rt20b_lt_view; ALTER TABLE rt20b_lt ADD COLUMN IF NOT EXISTS q int",
	} {
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
			if !errors.As(err, &pe) || (pe.Code != "55P03" && pe.Code != "42501") {
				t.Fatalf("%s behind an open reader: %v after %v; want lock_timeout's 55P03 or a refusal", q, err, time.Since(start).Round(time.Second))
			}
		})
	}
}
