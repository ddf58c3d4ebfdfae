package pgcatalog

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// TestCascadeDropsMatchServer: what CascadeDrops says a DROP TYPE,
// DOMAIN, FUNCTION, PROCEDURE or ROUTINE ... CASCADE drops (tables, views
// and columns of tables) is what the server drops when it runs it (in a
// transaction rolled back): the relations and columns of pg_class and
// pg_attribute that are gone after it.
func TestCascadeDropsMatchServer(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the CASCADE check against PostgreSQL in -short mode")
	}
	s := pgtest.Must(t, pgtest.Options{})
	if err := s.Exec("CREATE DATABASE cascadedb"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, s.DSN(pgtest.SuperUser, "cascadedb"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string) error {
		_, err := conn.Exec(ctx, sql).ReadAll()
		return err
	}
	for _, q := range []string{
		"CREATE SCHEMA other",
		"CREATE TYPE mood AS ENUM ('a', 'b')",
		"CREATE DOMAIN mood_dom AS mood",
		"CREATE DOMAIN mood_dom2 AS mood_dom CHECK (VALUE IS NOT NULL)",
		"CREATE TABLE moodt (id int, m mood, ms mood[], keep text)",
		"CREATE TABLE other.moodt2 (id int, md mood_dom2)",
		"CREATE TABLE moodt3 (id int, m mood)",
		"CREATE INDEX moodt3_m ON moodt3 (m)",
		"CREATE VIEW moodv AS SELECT id, m FROM moodt",
		"CREATE VIEW moodvv AS SELECT id FROM moodv",
		"CREATE TYPE comp AS (a int, m mood)",
		"CREATE TABLE typed OF comp",
		"CREATE TABLE compcol (id int, c comp)",
		"CREATE FUNCTION trig() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
		"CREATE TRIGGER moodt_tr BEFORE UPDATE ON moodt FOR EACH ROW EXECUTE FUNCTION trig()",
		"CREATE FUNCTION fdef(k int) RETURNS int LANGUAGE sql AS 'SELECT k'",
		"CREATE FUNCTION fdef(k text) RETURNS int LANGUAGE sql AS 'SELECT 1'",
		"CREATE TABLE deft (id int DEFAULT fdef(1), g int GENERATED ALWAYS AS (fdef(id)) STORED)",
		"CREATE TABLE chkt (id int CHECK (id > fdef(0)))",
		"CREATE VIEW fdefv AS SELECT fdef(1) AS x",
		"CREATE FUNCTION moodf(m mood) RETURNS int LANGUAGE sql AS 'SELECT 1'",
		"CREATE TABLE moodft (id int, x int DEFAULT moodf('a'))",
		"CREATE PROCEDURE p(m mood) LANGUAGE sql AS 'SELECT 1'",
		"CREATE TYPE unused AS ENUM ('x')",
	} {
		if err := exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	cat := &Catalog{Q: connQuerier{conn: conn, version: s.Version}}
	// The relations and table columns of the user's schemas.
	const inventory = "SELECT n.nspname || '.' || c.relname || coalesce('.' || a.attname, '') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace" +
		" LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f')" +
		" WHERE n.nspname IN ('public', 'other') AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
	list := func() map[string]bool {
		rows, ok := cat.query(inventory)
		if !ok {
			t.Fatal("inventory")
		}
		out := map[string]bool{}
		for _, r := range rows {
			out[*r[0]] = true
		}
		return out
	}
	for _, drop := range []string{
		"DROP TYPE mood CASCADE",
		"DROP TYPE public.mood CASCADE",
		"DROP DOMAIN mood_dom CASCADE",
		"DROP DOMAIN mood_dom2 CASCADE",
		"DROP TYPE comp CASCADE",
		"DROP FUNCTION trig() CASCADE",
		"DROP FUNCTION fdef(int) CASCADE",
		"DROP FUNCTION fdef(integer) CASCADE",
		"DROP FUNCTION fdef(text) CASCADE",
		"DROP FUNCTION moodf CASCADE",
		"DROP PROCEDURE p(mood) CASCADE",
		"DROP ROUTINE moodf(mood) CASCADE",
		"DROP TYPE unused CASCADE",
	} {
		t.Run(drop, func(t *testing.T) {
			tree, err := pg_query.Parse(drop)
			if err != nil {
				t.Fatal(err)
			}
			objs := policy.CascadeDropsOf(tree.Stmts[0].Stmt)
			if len(objs) != 1 {
				t.Fatalf("objects %+v", objs)
			}
			var said []string
			ds, ok := cat.CascadeDrops(ctx, objs[0].Kind, objs[0].Name.String(), objs[0].Args)
			if !ok {
				t.Fatal("CascadeDrops: not known")
			}
			for _, d := range ds {
				name := d.Table.Schema + "." + d.Table.Name
				if d.Column != "" {
					name += "." + d.Column
				}
				said = append(said, name)
			}
			before := list()
			if err := exec("BEGIN"); err != nil {
				t.Fatal(err)
			}
			defer exec("ROLLBACK")
			if err := exec(drop); err != nil {
				t.Fatal(err)
			}
			after := list()
			// What is gone: a relation whole (its columns with it), or a
			// column of a table that stays.
			var gone []string
			for name := range before {
				if after[name] {
					continue
				}
				parts := strings.Split(name, ".")
				if len(parts) == 3 && !after[parts[0]+"."+parts[1]] && !hasColumns(after, parts[0]+"."+parts[1]) {
					continue // a column of a relation dropped whole
				}
				if len(parts) == 3 && !hasColumns(after, parts[0]+"."+parts[1]) {
					continue
				}
				gone = append(gone, name)
			}
			// A relation dropped whole is listed once, as the relation.
			for name := range before {
				parts := strings.Split(name, ".")
				if len(parts) == 3 && !hasColumns(after, parts[0]+"."+parts[1]) {
					rel := parts[0] + "." + parts[1]
					if !contains(gone, rel) {
						gone = append(gone, rel)
					}
				}
			}
			sort.Strings(gone)
			sort.Strings(said)
			if strings.Join(gone, " ") != strings.Join(said, " ") {
				t.Errorf("the server drops %v; CascadeDrops says %v", gone, said)
			}
		})
	}
	if _, ok := cat.CascadeDrops(ctx, "type", "no_such_type", ""); ok {
		t.Error("a type that does not exist: known")
	}
}

// hasColumns reports whether names hold a column of rel (rel.x).
func hasColumns(names map[string]bool, rel string) bool {
	for n := range names {
		if strings.HasPrefix(n, rel+".") {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
