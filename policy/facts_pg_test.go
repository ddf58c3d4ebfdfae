package policy

import (
	"context"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// The lock the engine names for a statement (Decision.Lock) decides whether
// the proxy gives it lock_timeout and looks at the lock queue first, so it
// must be the lock PostgreSQL takes on the statement's main table: each
// statement runs in a transaction on a real server, and the strongest mode
// it holds on that table is compared.
func TestStatementLocksMatchServer(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the PostgreSQL lock check in -short mode")
	}
	s := pgtest.Must(t, pgtest.Options{})
	if err := s.Exec("CREATE DATABASE facts"); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, s, "facts")
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE t (id int PRIMARY KEY, v text)",
		"CREATE TABLE p (id int, k int) PARTITION BY RANGE (k)",
		"CREATE TABLE p_default PARTITION OF p DEFAULT",
		"CREATE SCHEMA other",
		"CREATE POLICY t_pol ON t USING (true)",
		"CREATE FUNCTION t_trig() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, c := range []struct{ sql, table string }{
		{"CREATE RULE t_rule AS ON INSERT TO t DO ALSO NOTHING", "t"},
		{"CREATE POLICY t_pol2 ON t USING (id > 0)", "t"},
		{"ALTER POLICY t_pol ON t USING (id > 1)", "t"},
		{"CREATE TABLE p_1 PARTITION OF p FOR VALUES FROM (0) TO (10)", "p"},
		{"CREATE TABLE t_child () INHERITS (t)", "t"},
		{"CREATE TRIGGER t_tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION t_trig()", "t"},
		{"ALTER TABLE t SET SCHEMA other", "t"},
		{"ALTER TABLE t ADD COLUMN c int", "t"},
		{"ALTER TABLE t RENAME TO t2", "t"},
		{"CREATE INDEX t_v ON t (v)", "t"},
		{"TRUNCATE t", "t"},
		{"LOCK TABLE t IN SHARE MODE", "t"},
		{"DROP POLICY t_pol ON t", "t"},
		{"COMMENT ON TABLE t IS 'x'", "t"},
		{"CREATE STATISTICS t_st ON id, v FROM t", "t"},
	} {
		t.Run(c.sql, func(t *testing.T) {
			tree, err := pg_query.Parse(c.sql)
			if err != nil {
				t.Fatal(err)
			}
			want := ""
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			var oid uint32
			if err := tx.QueryRow(ctx, "SELECT $1::regclass::oid", c.table).Scan(&oid); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, c.sql); err != nil {
				t.Fatal(err)
			}
			var modes []string
			if err := tx.QueryRow(ctx, "SELECT array(SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() AND granted AND locktype = 'relation' AND relation = $1)", oid).Scan(&modes); err != nil {
				t.Fatal(err)
			}
			for _, m := range modes {
				for _, l := range []string{LockAccessShare, LockRowShare, LockRowExclusive, LockShareUpdateExclusive, LockShare, LockShareRowExclusive, LockExclusive, LockAccessExclusive} {
					if pgLocksName(l) == m {
						want = strongerLock(want, l)
					}
				}
			}
			got := statementFacts(tree.Stmts[0].Stmt).lock
			if got != want && !(want == LockAccessShare && got == "") {
				t.Errorf("the engine says %q, PostgreSQL holds %v on %s (strongest %q)", got, modes, c.table, want)
			}
		})
	}
}

// Decision.TableLocks decides which tables' lock queues the proxy looks at
// before a statement and for which modes, so each table it names must be
// one PostgreSQL locks, with the strongest mode PostgreSQL holds on it
// after the statement ran in a transaction; and every table of the
// statement that PostgreSQL locks with a mode that blocks writes must be
// named (the table a FOREIGN KEY references included).
func TestStatementTableLocksMatchServer(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the PostgreSQL lock check in -short mode")
	}
	s := pgtest.Must(t, pgtest.Options{})
	if err := s.Exec("CREATE DATABASE tablelocks"); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, s, "tablelocks")
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE parent (id int PRIMARY KEY)",
		"CREATE TABLE child (id int PRIMARY KEY, parent_id int)",
		"CREATE TABLE other (id int)",
		"CREATE TABLE p (id int, k int) PARTITION BY RANGE (k)",
		"CREATE MATERIALIZED VIEW mv AS SELECT 1 AS x",
		"CREATE FUNCTION trig() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
		"CREATE TRIGGER child_tr0 BEFORE UPDATE ON child FOR EACH ROW EXECUTE FUNCTION trig()",
		"CREATE POLICY child_p0 ON child USING (true)",
		"CREATE RULE child_r0 AS ON DELETE TO child DO ALSO NOTHING",
		"CREATE VIEW v AS SELECT id FROM parent",
		"CREATE SEQUENCE s",
		// Relations a statement locks without naming them: an index's
		// table, a foreign key's other table (and the tables behind it,
		// for TRUNCATE ... CASCADE), owned sequences, a DEFAULT
		// partition.
		"CREATE TABLE fkc (id serial PRIMARY KEY, parent_id int CONSTRAINT fkc_fk REFERENCES parent, n int UNIQUE)",
		"CREATE TABLE fkc2 (id int, fkc_id int REFERENCES fkc, fkc_n int CONSTRAINT fkc2_n REFERENCES fkc (n))",
		"CREATE INDEX other_i ON other (id)",
		"CREATE INDEX fkc_parent ON fkc (parent_id)",
		"CREATE TABLE seqt (id int)",
		"CREATE SEQUENCE seqt_s OWNED BY seqt.id",
		"CREATE TABLE pp (id int, k int) PARTITION BY RANGE (k)",
		"CREATE TABLE pp_1 PARTITION OF pp FOR VALUES FROM (0) TO (10)",
		"CREATE TABLE pp_d PARTITION OF pp DEFAULT",
		"CREATE INDEX pp_i ON ONLY pp (k)",
		"CREATE INDEX pp_1_i ON pp_1 (k)",
		"CREATE TABLE qq (id int, k int)",
		"CREATE VIEW vt AS SELECT 1 AS x",
		"CREATE VIEW vv AS SELECT v.id, mv.x FROM v, mv",
		"CREATE DOMAIN dom AS int",
		"CREATE DOMAIN dom2 AS dom",
		"CREATE TABLE domt (id int, n dom)",
		"CREATE TABLE domt2 (id int, n dom2)",
		"CREATE TRIGGER vt_tr INSTEAD OF INSERT ON vt FOR EACH ROW EXECUTE FUNCTION trig()",
		// What DROP TYPE / DOMAIN / FUNCTION ... CASCADE drops with the
		// object: columns of the type, of its array and of a domain over
		// it, a view that uses such a column, an index on one, a table
		// typed by a composite type, the triggers of a trigger function,
		// a default, a CHECK and a view that call a function.
		"CREATE TYPE mood AS ENUM ('a', 'b')",
		"CREATE DOMAIN mood_dom AS mood",
		"CREATE TABLE moodt (id int, m mood, ms mood[])",
		"CREATE TABLE moodt2 (id int, md mood_dom)",
		"CREATE TABLE moodt3 (id int, m mood)",
		"CREATE INDEX moodt3_m ON moodt3 (m)",
		"CREATE VIEW moodv AS SELECT id, m FROM moodt",
		"CREATE TYPE comp AS (a int)",
		"CREATE TABLE typed OF comp",
		"CREATE FUNCTION trig2() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
		"CREATE TRIGGER moodt_tr BEFORE UPDATE ON moodt FOR EACH ROW EXECUTE FUNCTION trig2()",
		"CREATE TRIGGER moodt2_tr BEFORE INSERT ON moodt2 FOR EACH ROW EXECUTE FUNCTION trig2()",
		"CREATE FUNCTION fdef(k int) RETURNS int LANGUAGE sql AS 'SELECT k'",
		"CREATE TABLE deft (id int DEFAULT fdef(1), g int GENERATED ALWAYS AS (fdef(id)) STORED)",
		"CREATE VIEW moodvv AS SELECT id FROM moodv",
		"CREATE TABLE chkt (id int CHECK (id > fdef(0)))",
		"CREATE VIEW fdefv AS SELECT fdef(1) AS x",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Every relation of the schema, indexes and sequences included.
	var tables []string
	if err := conn.QueryRow(ctx, "SELECT array(SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace)").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{
		"ALTER TABLE child ADD FOREIGN KEY (parent_id) REFERENCES parent",
		"ALTER TABLE child ADD CONSTRAINT child_fk FOREIGN KEY (parent_id) REFERENCES parent (id) NOT VALID",
		"ALTER TABLE child ADD COLUMN p2 int REFERENCES parent",
		"ALTER TABLE child ADD COLUMN c int",
		"CREATE TABLE grandchild (id int, child_id int REFERENCES child, FOREIGN KEY (id) REFERENCES parent)",
		"CREATE TABLE p_1 PARTITION OF p FOR VALUES FROM (0) TO (10)",
		"CREATE INDEX child_parent ON child (parent_id)",
		"REINDEX TABLE child",
		"CREATE TRIGGER child_tr BEFORE INSERT ON child FOR EACH ROW EXECUTE FUNCTION trig()",
		"LOCK TABLE child, other IN SHARE MODE",
		"LOCK TABLE other IN EXCLUSIVE MODE",
		"LOCK other",
		"TRUNCATE child, other",
		"DROP TABLE other",
		"ALTER TABLE other RENAME TO other2",
		"ALTER TABLE other RENAME COLUMN id TO id2",
		"CLUSTER child USING child_pkey",
		"VACUUM FULL other",
		"REFRESH MATERIALIZED VIEW mv",
		"DROP TRIGGER child_tr0 ON child",
		"DROP POLICY child_p0 ON child",
		"DROP RULE child_r0 ON child",
		"CREATE OR REPLACE VIEW v AS SELECT id, 1 AS one FROM parent",
		"ALTER SEQUENCE s INCREMENT BY 2",
		"DROP INDEX other_i",
		"DROP INDEX fkc_parent",
		"REINDEX INDEX other_i",
		"ALTER INDEX other_i SET TABLESPACE pg_default",
		"ALTER INDEX pp_i ATTACH PARTITION pp_1_i",
		"ALTER TABLE pp ATTACH PARTITION qq FOR VALUES FROM (10) TO (20)",
		"ALTER TABLE pp DETACH PARTITION pp_1",
		"DROP TABLE fkc2",
		"DROP TABLE fkc CASCADE",
		"DROP TABLE seqt",
		"ALTER TABLE fkc DROP CONSTRAINT fkc_fk",
		"ALTER TABLE fkc DROP CONSTRAINT fkc_n_key CASCADE",
		"ALTER TABLE fkc DROP COLUMN parent_id",
		"ALTER TABLE fkc DROP COLUMN id CASCADE",
		"ALTER TABLE seqt DROP COLUMN id",
		"ALTER TABLE fkc ALTER COLUMN parent_id TYPE bigint",
		"ALTER TABLE fkc ALTER COLUMN n TYPE bigint",
		"TRUNCATE parent CASCADE",
		"TRUNCATE fkc RESTART IDENTITY CASCADE",
		"CREATE TRIGGER vt_tr2 INSTEAD OF UPDATE ON vt FOR EACH ROW EXECUTE FUNCTION trig()",
		"DROP TRIGGER vt_tr ON vt",
		"DROP VIEW vv",
		"DROP VIEW vt",
		"DROP TABLE pp_1",
		"LOCK TABLE v IN SHARE MODE",
		"LOCK TABLE vv IN ACCESS EXCLUSIVE MODE",
		"DROP SEQUENCE s",
		"ALTER VIEW v SET (security_barrier = true)",
		"ALTER VIEW v RESET (check_option)",
		"ALTER TABLE other SET (fillfactor = 80)",
		"ALTER DOMAIN dom ADD CONSTRAINT dom_pos CHECK (VALUE > 0)",
		"ALTER DOMAIN dom2 SET NOT NULL",
		"ALTER DOMAIN dom ADD CONSTRAINT dom_pos2 CHECK (VALUE > 0) NOT VALID",
		"DROP TYPE mood CASCADE",
		"DROP TYPE public.mood CASCADE",
		"DROP DOMAIN mood_dom CASCADE",
		"DROP DOMAIN dom CASCADE",
		"DROP TYPE comp CASCADE",
		"DROP FUNCTION trig2() CASCADE",
		"DROP FUNCTION trig2 CASCADE",
		"DROP FUNCTION fdef(int) CASCADE",
		"DROP FUNCTION fdef(integer) CASCADE",
		"DROP ROUTINE fdef CASCADE",
		"DROP FUNCTION trig CASCADE",
	} {
		t.Run(sql, func(t *testing.T) {
			tree, err := pg_query.Parse(sql)
			if err != nil {
				t.Fatal(err)
			}
			node := tree.Stmts[0].Stmt
			want := map[string]string{}
			run := func(q func(context.Context, string) error) {
				if err := q(ctx, sql); err != nil {
					t.Fatal(err)
				}
			}
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			// The relations each TableLock stands for, as the catalog
			// lists them before the statement runs (RelationsSQL, what
			// the proxy's look asks).
			got := map[string]string{}
			for _, tl := range tableLocks(node, statementFacts(node)) {
				var names []string
				q := "SELECT array(SELECT relname FROM pg_class WHERE oid IN (" +
					tl.RelationsSQL("pg_catalog.to_regclass("+QuoteLiteral(tl.Table.String())+")::oid") + "))"
				if err := tx.QueryRow(ctx, q).Scan(&names); err != nil {
					t.Fatalf("%+v: %s: %v", tl, q, err)
				}
				for _, name := range names {
					got[name] = strongerLock(got[name], tl.Mode)
				}
			}
			// A relation PostgreSQL locks that the look reaches without
			// the engine naming it: a partition or inheritance child of
			// a relation the engine names (the look follows
			// pg_inherits), an index of a table the engine names (a
			// session holding a lock on an index holds one on its
			// table), a TOAST table.
			owners := map[string][]string{}
			rows, err := tx.Query(ctx, "SELECT c.relname, pc.relname FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid JOIN pg_class pc ON pc.oid = i.inhparent"+
				" UNION ALL SELECT c.relname, tc.relname FROM pg_class c JOIN pg_index x ON x.indexrelid = c.oid JOIN pg_class tc ON tc.oid = x.indrelid")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var rel, owner string
				if err := rows.Scan(&rel, &owner); err != nil {
					t.Fatal(err)
				}
				owners[rel] = append(owners[rel], owner)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			covered := func(name string) bool {
				for _, o := range owners[name] {
					if got[o] != "" {
						return true
					}
				}
				return false
			}
			oids := map[uint32]string{}
			for _, name := range tables {
				var oid uint32
				if err := tx.QueryRow(ctx, "SELECT $1::regclass::oid", name).Scan(&oid); err != nil {
					t.Fatal(err)
				}
				oids[oid] = name
			}
			if strings.HasPrefix(sql, "VACUUM") {
				// VACUUM cannot run in a transaction block, where its
				// locks could be read: FULL takes ACCESS EXCLUSIVE on the
				// table it names (PostgreSQL's documentation); it must
				// at least run.
				want["other"] = LockAccessExclusive
				tx.Rollback(ctx)
				run(func(ctx context.Context, q string) error { _, err := conn.Exec(ctx, q); return err })
			} else {
				run(func(ctx context.Context, q string) error { _, err := tx.Exec(ctx, q); return err })
				rows, err := tx.Query(ctx, "SELECT relation, mode FROM pg_locks WHERE pid = pg_backend_pid() AND granted AND locktype = 'relation'")
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var oid uint32
					var mode string
					if err := rows.Scan(&oid, &mode); err != nil {
						t.Fatal(err)
					}
					name, ok := oids[oid]
					if !ok {
						continue
					}
					for _, l := range lockOrder {
						if pgLocksName(l) == mode {
							want[name] = strongerLock(want[name], l)
						}
					}
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
			}
			for name, mode := range got {
				if want[name] != mode {
					t.Errorf("the engine says %s on %s, PostgreSQL holds %q", mode, name, want[name])
				}
			}
			for name, mode := range want {
				if BlocksWrites(mode) && got[name] == "" && !covered(name) {
					t.Errorf("PostgreSQL holds %s on %s, which the engine does not name", mode, name)
				}
			}
		})
	}
}
