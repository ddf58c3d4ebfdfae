package pgcatalog

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// TestDomainColumnsMatchServer: the tables DomainColumns lists for a
// domain are those ALTER DOMAIN ... ADD CONSTRAINT scans, as PostgreSQL 15
// shows them: the relations it still holds SHARE on inside the
// transaction (it releases the lock of the relkinds it does not scan,
// and a leaf's partition root is listed as well,
// and refuses the statement for an array, composite or range of the
// domain). Domains over domains, quoted names, a partition, a
// materialized view, a view and a dropped column are in the schema.
func TestDomainColumnsMatchServer(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	if _, err := pg.CreateDatabase("domains"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec("ALTER DATABASE domains OWNER TO " + pgtest.SCRAMUser); err != nil {
		t.Fatal(err)
	}
	q := connect(t, pg, "domains")
	mustExec(t, q, "SET default_transaction_read_only = off")
	for _, sql := range []string{
		`CREATE SCHEMA "Dom s"`,
		`CREATE DOMAIN d AS int`, `CREATE DOMAIN "Dom s"."D 2" AS d`, `CREATE DOMAIN d3 AS "Dom s"."D 2" NOT NULL`, `CREATE DOMAIN lone AS text`,
		`CREATE TABLE t1 (id int, a d, b d3)`, `CREATE TABLE "Dom s"."T 2" ("C x" "Dom s"."D 2")`,
		`CREATE TABLE p (k d) PARTITION BY RANGE (k)`, `CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10)`,
		`CREATE MATERIALIZED VIEW mv AS SELECT a FROM t1`, `CREATE VIEW v AS SELECT a FROM t1`,
		`CREATE TABLE gone (x d, y int)`, `ALTER TABLE gone DROP COLUMN x`,
		`CREATE TABLE other (x int)`,
	} {
		mustExec(t, q, sql)
	}
	cat := &Catalog{Q: q}
	ctx := context.Background()
	for _, c := range []struct {
		typ, check string
		notNull    bool
	}{
		{"d", "VALUE > -1", false},
		{`"Dom s"."D 2"`, "VALUE > -1", false},
		{"d3", "VALUE > -1", true},
		{"lone", "VALUE <> ''", false},
	} {
		cols, notNull, ok := cat.DomainColumns(ctx, c.typ)
		if !ok {
			t.Fatalf("%s: no answer", c.typ)
		}
		if notNull != c.notNull {
			t.Errorf("%s: notNull %v, want %v", c.typ, notNull, c.notNull)
		}
		got := map[string]bool{}
		for _, col := range cols {
			got[col.Table.String()] = true
		}
		// The oracle: what the server holds SHARE on after the statement.
		mustExec(t, q, "BEGIN")
		mustExec(t, q, "ALTER DOMAIN "+c.typ+" ADD CONSTRAINT probe CHECK ("+c.check+")")
		// A leaf's partition root is listed too: writes to it wait for the
		// scan of every leaf (sized with them all).
		rows, ok := q.Query("SELECT n.nspname, c.relname FROM pg_locks l JOIN pg_class s ON s.oid = l.relation" +
			" CROSS JOIN LATERAL (VALUES (s.oid), (CASE WHEN s.relispartition THEN pg_partition_root(s.oid) END)) r(oid)" +
			" JOIN pg_class c ON c.oid = r.oid JOIN pg_namespace n ON n.oid = c.relnamespace" +
			" WHERE l.pid = pg_backend_pid() AND l.mode = 'ShareLock' AND n.nspname NOT IN ('pg_catalog', 'information_schema')")
		mustExec(t, q, "ROLLBACK")
		if !ok {
			t.Fatal("pg_locks")
		}
		want := map[string]bool{}
		for _, r := range rows {
			want[policy.Table{Schema: *r[0], Name: *r[1]}.String()] = true
		}
		if strings.Join(keys(got), ",") != strings.Join(keys(want), ",") {
			t.Errorf("%s: DomainColumns lists %v, the server scanned %v", c.typ, keys(got), keys(want))
		}
	}
	if cols, _, ok := cat.DomainColumns(ctx, "no_such_domain"); !ok || len(cols) != 0 {
		t.Errorf("an unknown domain: %v %v", cols, ok)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
