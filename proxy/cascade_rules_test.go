package proxy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// DROP TYPE / DOMAIN / FUNCTION ... CASCADE drops what depends on the
// object; pgguard asks the server's pg_depend what that is, so that rule
// drop-column sees a column of the type it drops and drop-table a table
// typed by it: each refused, nothing dropped; allowed by its annotation,
// or when nothing but a trigger depends, it runs.
func TestDropCascadeSeesDependents(t *testing.T) {
	setup := []string{
		"DROP TABLE IF EXISTS cx_t, cx_typed, cx_d CASCADE", "DROP TYPE IF EXISTS cx_mood, cx_comp, cx_unused CASCADE", "DROP DOMAIN IF EXISTS cx_dom CASCADE",
		"DROP FUNCTION IF EXISTS cx_trf() CASCADE",
		"CREATE TYPE cx_mood AS ENUM ('a', 'b')",
		"CREATE TABLE cx_t (id int PRIMARY KEY, m cx_mood[], v text)",
		"CREATE TYPE cx_comp AS (a int)",
		"CREATE TABLE cx_typed OF cx_comp",
		"CREATE DOMAIN cx_dom AS int",
		"CREATE TABLE cx_d (id int, n cx_dom)",
		"CREATE TYPE cx_unused AS ENUM ('x')",
		"CREATE FUNCTION cx_trf() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
		"CREATE TRIGGER cx_tr BEFORE UPDATE ON cx_t FOR EACH ROW EXECUTE FUNCTION cx_trf()",
	}
	enforceDatabase(t)
	if err := pgExec("guard", setup...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pgExec("guard", setup[:4]...) })
	_, addr, _ := guardProxy(t, "annotations: {allowed_roles: ['*']}\n", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
	direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	ctx := context.Background()
	left := func() string {
		var s string
		if err := direct.QueryRow(ctx, "SELECT concat_ws(',', (SELECT string_agg(attname, ',' ORDER BY attname) FROM pg_attribute WHERE attrelid IN ('cx_t'::regclass, 'cx_d'::regclass) AND attnum > 0 AND NOT attisdropped),"+
			" to_regclass('cx_typed'), to_regtype('cx_mood'), to_regtype('cx_comp'), to_regtype('cx_dom'))").Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	all := left()
	for _, c := range []struct{ sql, rule string }{
		{"DROP TYPE cx_mood CASCADE", "drop-column"},
		{"DROP DOMAIN cx_dom CASCADE", "drop-column"},
		{"DROP TYPE cx_comp CASCADE", "drop-table"},
	} {
		_, err := conn.Exec(ctx, c.sql)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" || !strings.Contains(pe.Message, c.rule) {
			t.Errorf("%s: not refused by %s (%v)", c.sql, c.rule, err)
		}
		if now := left(); now != all {
			t.Fatalf("%s dropped through pgguard: %s, was %s", c.sql, now, all)
		}
	}
	mustExec(t, conn, "DROP TYPE cx_unused CASCADE")
	mustExec(t, conn, "DROP FUNCTION cx_trf() CASCADE")
	mustExec(t, conn, `/* pgguard:allow drop-column reason="test" */ DROP TYPE cx_mood CASCADE`)
	if now := left(); strings.Contains(now, ",m,") || strings.HasPrefix(now, "id,m,") {
		t.Errorf("column m still there: %s", now)
	}
}
