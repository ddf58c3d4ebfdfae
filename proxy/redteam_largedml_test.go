package proxy

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// redteamLargeDML runs setup directly on the server, then each statement
// through pgguard in a migration's session (application_name knex): each
// changes 150,000 rows on PostgreSQL, so large-dml must refuse it, and the
// rows must be unchanged (changed returns the rows changed, counted
// directly).
func redteamLargeDML(t *testing.T, setup []string, stmts []string, changed, reset string) {
	t.Helper()
	largeDMLSetup(t)
	if err := pgExec("guard", setup...); err != nil {
		t.Fatal(err)
	}
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
	direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	for _, q := range stmts {
		tag, err := conn.Exec(context.Background(), q)
		var pe *pgconn.PgError
		if err == nil || !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s: not refused by large-dml (tag %q, err %v)", q, tag, err)
		}
		var n int64
		if err := direct.QueryRow(context.Background(), changed).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s: %d rows changed through pgguard (max_rows 100,000)", q, n)
			if err := pgExec("guard", strings.Split(reset, "; ")...); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A unique index on an inheritance parent says nothing about its
// children's rows: UPDATE parent ... WHERE id = 1 changes every child row
// with id 1.
func TestRedteamLargeDMLInheritanceChildren(t *testing.T) {
	redteamLargeDML(t, []string{
		"CREATE TABLE rt_inh (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"CREATE TABLE rt_inh_child () INHERITS (rt_inh) WITH (autovacuum_enabled = off)",
		"INSERT INTO rt_inh VALUES (1, 0)",
		"INSERT INTO rt_inh_child SELECT 1, 0 FROM generate_series(1, 150000)",
		"ANALYZE rt_inh, rt_inh_child",
	}, []string{
		"UPDATE rt_inh SET v = 1 WHERE id = 1",
		"DELETE FROM rt_inh WHERE id = 1",
		"UPDATE rt_inh SET v = 1",
		"DELETE FROM rt_inh WHERE v = 0",
	}, "SELECT (SELECT count(*) FROM rt_inh WHERE v <> 0) + (150001 - (SELECT count(*) FROM rt_inh))",
		"TRUNCATE rt_inh, rt_inh_child; INSERT INTO rt_inh VALUES (1, 0); INSERT INTO rt_inh_child SELECT 1, 0 FROM generate_series(1, 150000); ANALYZE rt_inh, rt_inh_child")
}

// A rule on a small table's UPDATE that updates a big one: the keyed
// UPDATE changes 150,000 rows of the big table.
func TestRedteamLargeDMLRule(t *testing.T) {

	redteamLargeDML(t, []string{
		"CREATE TABLE rt_rule_small (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0)",
		"CREATE TABLE rt_rule_big (id bigint, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"INSERT INTO rt_rule_small VALUES (1, 0)",
		"INSERT INTO rt_rule_big SELECT g, 0 FROM generate_series(1, 150000) g",
		"ANALYZE rt_rule_small, rt_rule_big",
		"CREATE RULE rt_rule_also AS ON UPDATE TO rt_rule_small DO ALSO UPDATE rt_rule_big SET v = v + 1",
	}, []string{
		"UPDATE rt_rule_small SET v = 1 WHERE id = 1",
		"UPDATE rt_rule_small SET v = 1 WHERE v = 0",
	}, "SELECT count(*) FROM rt_rule_big WHERE v <> 0", "UPDATE rt_rule_big SET v = 0 WHERE v <> 0; UPDATE rt_rule_small SET v = 0")
}

// A trigger on a small table's UPDATE that updates a big one.
func TestRedteamLargeDMLTrigger(t *testing.T) {

	redteamLargeDML(t, []string{
		"CREATE TABLE rt_trg_small (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0)",
		"CREATE TABLE rt_trg_big (id bigint, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"INSERT INTO rt_trg_small VALUES (1, 0)",
		"INSERT INTO rt_trg_big SELECT g, 0 FROM generate_series(1, 150000) g",
		"ANALYZE rt_trg_small, rt_trg_big",
		"CREATE FUNCTION rt_trg_f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN UPDATE rt_trg_big SET v = v + 1; RETURN NEW; END$$",
		"CREATE TRIGGER rt_trg AFTER UPDATE ON rt_trg_small FOR EACH ROW EXECUTE FUNCTION rt_trg_f()",
	}, []string{
		"UPDATE rt_trg_small SET v = 1 WHERE id = 1",
	}, "SELECT count(*) FROM rt_trg_big WHERE v <> 0", "ALTER TABLE rt_trg_small DISABLE TRIGGER rt_trg; UPDATE rt_trg_big SET v = 0 WHERE v <> 0; UPDATE rt_trg_small SET v = 0; ALTER TABLE rt_trg_small ENABLE TRIGGER rt_trg")
}

// A function that updates a big table, called from a SELECT.
func TestRedteamLargeDMLFunctionInSelect(t *testing.T) {

	redteamLargeDML(t, []string{
		"CREATE TABLE rt_fn_big (id bigint, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"INSERT INTO rt_fn_big SELECT g, 0 FROM generate_series(1, 150000) g",
		"ANALYZE rt_fn_big",
		"CREATE FUNCTION rt_fn_sql() RETURNS bigint LANGUAGE sql AS 'UPDATE rt_fn_big SET v = v + 1 RETURNING 1'",
		"CREATE FUNCTION rt_fn_pl() RETURNS void LANGUAGE plpgsql AS $$BEGIN UPDATE rt_fn_big SET v = v + 1; END$$",
	}, []string{
		"SELECT rt_fn_sql()",
		"SELECT rt_fn_pl()",
		"DO $$BEGIN EXECUTE 'UPDATE rt_fn_big SET v = v + 1'; END$$",
		"DO $$BEGIN EXECUTE format('UPDATE %I SET v = v + 1', 'rt_fn_big'); END$$",
	}, "SELECT count(*) FROM rt_fn_big WHERE v <> 0", "UPDATE rt_fn_big SET v = 0 WHERE v <> 0")
}

// search_path set in the session: an unqualified name is another schema's
// table, with no unique index.
func TestRedteamLargeDMLSearchPath(t *testing.T) {
	largeDMLSetup(t)
	if err := pgExec("guard",
		"CREATE SCHEMA rt_sp",
		"CREATE TABLE rt_sp.dml_accounts (id bigint NOT NULL, status text NOT NULL) WITH (autovacuum_enabled = off)",
		"INSERT INTO rt_sp.dml_accounts SELECT 1, 'done' FROM generate_series(1, 150000)",
		"ANALYZE rt_sp.dml_accounts",
		"GRANT ALL ON SCHEMA rt_sp TO PUBLIC",
	); err != nil {
		t.Fatal(err)
	}
	redteamLargeDML(t, nil, []string{
		"SET search_path = rt_sp, public; UPDATE dml_accounts SET status = 'x' WHERE id = 1",
	}, "SELECT count(*) FROM rt_sp.dml_accounts WHERE status <> 'done'", "UPDATE rt_sp.dml_accounts SET status = 'done'")
}

// A user-defined = operator that is not equality.
func TestRedteamLargeDMLCustomEquals(t *testing.T) {

	redteamLargeDML(t, []string{
		"CREATE TABLE rt_op (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"INSERT INTO rt_op SELECT g, 0 FROM generate_series(1, 150000) g",
		"ANALYZE rt_op",
		"CREATE FUNCTION rt_op_eq(bigint, text) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true'",
		"CREATE OPERATOR = (LEFTARG = bigint, RIGHTARG = text, FUNCTION = rt_op_eq)",
	}, []string{
		"UPDATE rt_op SET v = 1 WHERE id = 'any'::text",
	}, "SELECT count(*) FROM rt_op WHERE v <> 0", "UPDATE rt_op SET v = 0 WHERE v <> 0")
}

// An upsert whose SELECT has no FROM but a set-returning function in its
// target list: 150,000 rows, each meeting a conflict.
func TestRedteamLargeDMLUpsertSetReturning(t *testing.T) {
	redteamLargeDML(t, []string{
		"CREATE TABLE rt_up (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"INSERT INTO rt_up SELECT g, 0 FROM generate_series(1, 150000) g",
		// The insert's statistics flushed before ANALYZE, not after.
		"SELECT pg_stat_force_next_flush()",
		"ANALYZE rt_up",
	}, []string{
		"INSERT INTO rt_up (id, v) SELECT generate_series(1, 150000), 1 ON CONFLICT (id) DO UPDATE SET v = excluded.v",
		"INSERT INTO rt_up (id, v) SELECT unnest(array(SELECT generate_series(1, 150000))), 1 ON CONFLICT (id) DO UPDATE SET v = excluded.v",
		"INSERT INTO rt_up (id, v) SELECT x, 1 FROM unnest(array(SELECT generate_series(1, 150000))) x ON CONFLICT (id) DO UPDATE SET v = excluded.v",
	}, "SELECT count(*) FROM rt_up WHERE v <> 0", "UPDATE rt_up SET v = 0 WHERE v <> 0")
	// One row, whatever function the list calls, still runs (a volatile
	// one cannot be counted: the estimate stands).
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
	for _, q := range []string{
		"INSERT INTO rt_up (id, v) SELECT 1, length(gen_random_uuid()::text) ON CONFLICT (id) DO UPDATE SET v = excluded.v",
		"INSERT INTO rt_up (id, v) SELECT generate_series(1, 3), 1 ON CONFLICT (id) DO UPDATE SET v = excluded.v",
	} {
		if tag := mustExec(t, conn, q); tag.RowsAffected() == 0 {
			t.Fatalf("%s: %s", q, tag)
		}
	}
}

// Rows that come out of an array the planner cannot see into: it guesses
// 10 or 100 of them.
func TestRedteamLargeDMLArrayRows(t *testing.T) {
	redteamLargeDML(t, []string{
		"CREATE TABLE rt_arr (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"INSERT INTO rt_arr SELECT g, 0 FROM generate_series(1, 150000) g",
		"SELECT pg_stat_force_next_flush()",
		"ANALYZE rt_arr",
	}, []string{
		"UPDATE rt_arr SET v = 1 FROM unnest(array(SELECT generate_series(1, 150000))) u(x) WHERE rt_arr.id = u.x",
		"UPDATE rt_arr SET v = 1 WHERE id = ANY (array(SELECT generate_series(1, 150000)))",
		"UPDATE rt_arr SET v = 1 WHERE id IN (SELECT unnest(array(SELECT generate_series(1, 150000))))",
		"MERGE INTO rt_arr USING (SELECT unnest(array(SELECT generate_series(1, 150000))) AS x) s ON rt_arr.id = s.x WHEN MATCHED THEN UPDATE SET v = 1",
		"WITH s AS (SELECT unnest(array(SELECT generate_series(1, 150000))) AS x) UPDATE rt_arr SET v = 1 FROM s WHERE rt_arr.id = s.x",
	}, "SELECT count(*) FROM rt_arr WHERE v <> 0", "UPDATE rt_arr SET v = 0 WHERE v <> 0; SELECT pg_stat_force_next_flush(); ANALYZE rt_arr")
}

// An array bound to = ANY($1) by a driver (pgx: binary int8[]; text
// form too), 150,000 keys.
func TestRedteamLargeDMLAnyArrayParameter(t *testing.T) {
	largeDMLSetup(t)
	if err := pgExec("guard",
		"CREATE TABLE rt_any (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"INSERT INTO rt_any SELECT g, 0 FROM generate_series(1, 150000) g",
		"SELECT pg_stat_force_next_flush()",
		"ANALYZE rt_any",
	); err != nil {
		t.Fatal(err)
	}
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
	direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	ids := make([]int64, 150000)
	var text strings.Builder
	text.WriteString("{")
	for i := range ids {
		ids[i] = int64(i + 1)
		if i > 0 {
			text.WriteString(",")
		}
		text.WriteString(strconv.Itoa(i + 1))
	}
	text.WriteString("}")
	for _, c := range []struct {
		q   string
		arg any
	}{
		{"UPDATE rt_any SET v = 1 WHERE id = ANY($1)", ids},
		{"UPDATE rt_any SET v = 1 WHERE id = ANY($1::bigint[])", text.String()},
		{"DELETE FROM rt_any WHERE id IN (SELECT unnest($1::bigint[]))", text.String()},
	} {
		tag, err := conn.Exec(context.Background(), c.q, c.arg)
		var pe *pgconn.PgError
		if err == nil || !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s: not refused by large-dml (tag %q, err %v)", c.q, tag, err)
		}
		var n int64
		if err := direct.QueryRow(context.Background(), "SELECT count(*) FILTER (WHERE v <> 0) + (150000 - count(*)) FROM rt_any").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s: %d rows changed through pgguard", c.q, n)
		}
		if err := pgExec("guard", "UPDATE rt_any SET v = 0 WHERE v <> 0", "INSERT INTO rt_any SELECT g, 0 FROM generate_series(1, 150000) g ON CONFLICT DO NOTHING", "SELECT pg_stat_force_next_flush()", "ANALYZE rt_any"); err != nil {
			t.Fatal(err)
		}
	}
}
