package proxy

import (
	"testing"
)

// Red team (issue 21, round 2): statements that lock relations the look
// before queueing does not look at. Each case: a session holds a lock
// (idle in its transaction for 2.5s) on a relation the migration's
// statement locks on the server, the application queries it in a loop
// through pgguard, the migration sends its statement through pgguard. The
// promise: the statement waits outside the queue (one wait, outcome
// clear), runs once the holder is gone, and no application statement
// takes 500 ms or more.
// rtShapeCase is a case of TestRedteamLookShapes; appGone: the migration
// drops what the application queries, whose errors then are PostgreSQL's
// own (not counted), only how long its statements take.
type rtShapeCase struct {
	rtLookCase
	appGone bool
	skip    string
}

func rtShapeLook(t *testing.T, sc rtShapeCase) {
	rtLookWith(t, sc.rtLookCase, "annotations: {allowed_roles: ['*']}\n", sc.appGone)
}

const rtShapeTables = "DROP TABLE IF EXISTS rt2_t, rt2_p, rt2_d CASCADE; DROP VIEW IF EXISTS rt2_v; DROP MATERIALIZED VIEW IF EXISTS rt2_mv;" +
	" DROP SEQUENCE IF EXISTS rt2_s; DROP DOMAIN IF EXISTS rt2_dom CASCADE;" +
	" CREATE TABLE rt2_t (id int PRIMARY KEY, v text); INSERT INTO rt2_t SELECT g, 'x' FROM generate_series(1, 100) g; ANALYZE rt2_t"

func rtShapeCleanup(t *testing.T) {
	t.Cleanup(func() {
		pgExec("guard", "DROP TABLE IF EXISTS rt2_t, rt2_p, rt2_d CASCADE; DROP VIEW IF EXISTS rt2_v; DROP MATERIALIZED VIEW IF EXISTS rt2_mv;"+
			" DROP SEQUENCE IF EXISTS rt2_s; DROP DOMAIN IF EXISTS rt2_dom CASCADE; DROP FUNCTION IF EXISTS rt2_fn(), rt2_fn2(); DROP PROCEDURE IF EXISTS rt2_pr()")
	})
}

func TestRedteamLookShapes(t *testing.T) {
	rtShapeCleanup(t)
	const read = "SELECT v FROM rt2_t WHERE id = $1"
	const view = "CREATE VIEW rt2_v AS SELECT id, v FROM rt2_t"
	for _, c := range []rtShapeCase{
		// DROP VIEW and DROP SEQUENCE take ACCESS EXCLUSIVE on what they
		// drop (pgguard gives them lock_timeout) but the look only knows
		// DROP TABLE, MATERIALIZED VIEW and INDEX: the DROP queues behind
		// the reader, every read of the view (nextval) behind the DROP.
		{rtLookCase{name: "DROP VIEW, a read of the view left idle", setup: []string{rtShapeTables, view},
			hold: "SELECT count(*) FROM rt2_v", app: "SELECT v FROM rt2_v WHERE id = $1", migration: []string{"DROP VIEW rt2_v"}}, true, ""},
		{rtLookCase{name: "DROP SEQUENCE, a nextval left idle", setup: []string{rtShapeTables, "CREATE SEQUENCE rt2_s"},
			hold: "SELECT nextval('rt2_s')", app: "SELECT nextval('rt2_s') + $1", migration: []string{"DROP SEQUENCE rt2_s"}}, true, ""},
		// A view's security_barrier, security_invoker and check_option
		// take ACCESS EXCLUSIVE (PostgreSQL 15's reloptions.c), not the
		// SHARE UPDATE EXCLUSIVE of a table's storage parameters: pgguard
		// sees no lock that blocks writes (no lock_timeout, no look), and
		// the ALTER VIEW waits for the reader with none.
		{rtLookCase{name: "ALTER VIEW SET (security_barrier), a read of the view left idle", setup: []string{rtShapeTables, view},
			hold: "SELECT count(*) FROM rt2_v", app: "SELECT v FROM rt2_v WHERE id = $1", migration: []string{"ALTER VIEW rt2_v SET (security_barrier = true)"}}, false, ""},
		{rtLookCase{name: "ALTER VIEW RESET (check_option), a read of the view left idle", setup: []string{rtShapeTables,
			"CREATE VIEW rt2_v AS SELECT id, v FROM rt2_t WITH LOCAL CHECK OPTION"},
			hold: "SELECT count(*) FROM rt2_v", app: "SELECT v FROM rt2_v WHERE id = $1", migration: []string{"ALTER VIEW rt2_v RESET (check_option)"}}, false, ""},
		// LOCK TABLE of a view locks the tables of its query with the
		// same mode (PostgreSQL 11+, LockViewRecurse); the look only
		// looks at the view.
		{rtLookCase{name: "LOCK TABLE of a view in a block, a read of its base table left idle", setup: []string{rtShapeTables, view},
			hold: "SELECT count(*) FROM rt2_t", app: read, migration: []string{"BEGIN", "LOCK TABLE rt2_v IN ACCESS EXCLUSIVE MODE", "COMMIT"}}, false, ""},
		// DROP TABLE of a partition takes ACCESS EXCLUSIVE on its parent
		// too (PostgreSQL 12+, RangeVarCallbackForDropRelation); the
		// holder reads the other partition through the parent.
		{rtLookCase{name: "DROP TABLE of a partition, a read of another partition through the parent left idle", setup: []string{rtShapeTables,
			"CREATE TABLE rt2_p (id int, v text) PARTITION BY RANGE (id)", "CREATE TABLE rt2_p1 PARTITION OF rt2_p FOR VALUES FROM (0) TO (1000)",
			"CREATE TABLE rt2_p2 PARTITION OF rt2_p FOR VALUES FROM (1000) TO (2000)", "INSERT INTO rt2_p SELECT g, 'x' FROM generate_series(1, 1999) g", "ANALYZE rt2_p"},
			hold: "SELECT count(*) FROM rt2_p WHERE id = 1500", app: "SELECT v FROM rt2_p WHERE id = 1000 + $1",
			migration: []string{`/* pgguard:allow drop-table reason="test" */ DROP TABLE rt2_p1`}}, false, ""},
		// ALTER DOMAIN ... ADD CONSTRAINT checks every column of the
		// domain, with SHARE on each table that has one
		// (validateDomainConstraint): it blocks the table's writes, and
		// pgguard gave it no lock_timeout and no look.
		{rtLookCase{name: "ALTER DOMAIN ADD CONSTRAINT, a write of a table with the domain left idle", setup: []string{rtShapeTables,
			"CREATE DOMAIN rt2_dom AS int", "CREATE TABLE rt2_d (id int PRIMARY KEY, n rt2_dom)", "INSERT INTO rt2_d SELECT g, g FROM generate_series(1, 100) g"},
			hold: "UPDATE rt2_d SET n = n WHERE id = 50", app: "UPDATE rt2_d SET n = n WHERE id = $1",
			migration: []string{"ALTER DOMAIN rt2_dom ADD CONSTRAINT rt2_dom_pos CHECK (VALUE > 0)"}}, false,
			""},
		// DDL in a function called with SELECT by a session pgguard does
		// not know as a migration's (created without pgguard): the call
		// of a function that is not built in is read (policy.
		// CallsUserFunction), and the body's DDL gives the call its
		// lock_timeout and look.
		{rtLookCase{name: "ALTER TABLE in a function called by SELECT, a read left idle", setup: []string{rtShapeTables,
			"CREATE OR REPLACE FUNCTION rt2_fn() RETURNS void LANGUAGE plpgsql AS $$ BEGIN ALTER TABLE rt2_t ADD COLUMN note text; END $$"},
			hold: "SELECT count(*) FROM rt2_t", app: read, migration: []string{"SELECT rt2_fn()"}}, false, ""},
		{rtLookCase{name: "ALTER TABLE in a SQL function called through another, a read left idle", setup: []string{rtShapeTables,
			"CREATE OR REPLACE FUNCTION rt2_fn() RETURNS void LANGUAGE sql AS $$ ALTER TABLE rt2_t ADD COLUMN note text $$",
			"CREATE OR REPLACE FUNCTION rt2_fn2() RETURNS int LANGUAGE plpgsql AS $$ BEGIN PERFORM rt2_fn(); RETURN 1; END $$"},
			hold: "SELECT count(*) FROM rt2_t", app: read, migration: []string{"SELECT rt2_fn2()"}}, false, ""},
		{rtLookCase{name: "ALTER TABLE in a procedure called by CALL, a read left idle", setup: []string{rtShapeTables,
			"CREATE OR REPLACE PROCEDURE rt2_pr() LANGUAGE plpgsql AS $$ BEGIN ALTER TABLE rt2_t ADD COLUMN note text; END $$"},
			hold: "SELECT count(*) FROM rt2_t", app: read, migration: []string{"CALL rt2_pr()"}}, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.skip != "" {
				t.Skip(c.skip)
			}
			rtShapeLook(t, c)
		})
	}
}

// Drops that remove tables, columns or triggers of tables they do not
// name, each with ACCESS EXCLUSIVE on those tables: DROP SCHEMA ...
// CASCADE (its tables), DROP TYPE ... CASCADE (the columns of that type),
// DROP FUNCTION ... CASCADE (the triggers that call it).
func TestRedteamLookShapesCascade(t *testing.T) {
	rtShapeCleanup(t)
	t.Cleanup(func() {
		pgExec("guard", "DROP SCHEMA IF EXISTS rt2_sch CASCADE; DROP TABLE IF EXISTS rt2_e; DROP TYPE IF EXISTS rt2_mood; DROP FUNCTION IF EXISTS rt2_trf() CASCADE")
	})
	for _, c := range []rtShapeCase{
		{rtLookCase{name: "DROP SCHEMA CASCADE, a read of its table left idle", setup: []string{rtShapeTables, "DROP SCHEMA IF EXISTS rt2_sch CASCADE", "CREATE SCHEMA rt2_sch",
			"CREATE TABLE rt2_sch.t (id int PRIMARY KEY, v text)", "INSERT INTO rt2_sch.t SELECT g, 'x' FROM generate_series(1, 100) g"},
			hold: "SELECT count(*) FROM rt2_sch.t", app: "SELECT v FROM rt2_sch.t WHERE id = $1",
			migration: []string{`/* pgguard:allow drop-table reason="test" */ DROP SCHEMA rt2_sch CASCADE`}}, true, ""},
		{rtLookCase{name: "DROP TYPE CASCADE, a read of a table with a column of the type left idle", setup: []string{rtShapeTables,
			"DROP TABLE IF EXISTS rt2_e", "DROP TYPE IF EXISTS rt2_mood", "CREATE TYPE rt2_mood AS ENUM ('a', 'b')",
			"CREATE TABLE rt2_e (id int PRIMARY KEY, m rt2_mood, v text)", "INSERT INTO rt2_e SELECT g, 'a', 'x' FROM generate_series(1, 100) g"},
			hold: "SELECT count(*) FROM rt2_e", app: "SELECT v FROM rt2_e WHERE id = $1",
			migration: []string{`/* pgguard:allow drop-column reason="test" */ DROP TYPE rt2_mood CASCADE`}}, false, ""},
		{rtLookCase{name: "DROP FUNCTION CASCADE of a trigger function, a read of the trigger's table left idle", setup: []string{rtShapeTables,
			"CREATE OR REPLACE FUNCTION rt2_trf() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
			"CREATE TRIGGER rt2_tr BEFORE UPDATE ON rt2_t FOR EACH ROW EXECUTE FUNCTION rt2_trf()"},
			hold: "SELECT count(*) FROM rt2_t", app: "SELECT v FROM rt2_t WHERE id = $1",
			migration: []string{"DROP FUNCTION rt2_trf() CASCADE"}}, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.skip != "" {
				t.Skip(c.skip)
			}
			rtShapeLook(t, c)
		})
	}
}
