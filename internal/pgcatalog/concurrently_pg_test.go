package pgcatalog

import (
	"context"
	"strings"
	"testing"

	_ "github.com/pgguard/pgguard/policy/rules" // the rules register themselves with the engine

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// connQuerier asks the catalog's questions on a pgconn connection.
type connQuerier struct {
	conn    *pgconn.PgConn
	version int
}

func (q connQuerier) Query(sql string) ([][]*string, bool) {
	res, err := q.conn.Exec(context.Background(), sql).ReadAll()
	if err != nil || len(res) != 1 {
		return nil, false
	}
	out := make([][]*string, 0, len(res[0].Rows))
	for _, r := range res[0].Rows {
		row := make([]*string, len(r))
		for i, v := range r {
			if v != nil {
				s := string(v)
				row[i] = &s
			}
		}
		out = append(out, row)
	}
	return out, true
}

func (q connQuerier) Idle() bool         { return true }
func (q connQuerier) ServerVersion() int { return q.version }

// TestConcurrentlyWhereServerAllows: pgguard rewrites a statement to its
// CONCURRENTLY form exactly where PostgreSQL runs that form and does all
// of the statement's work (no WARNING that it skipped something), and
// where it does not rewrite it the refusal's recipe is one the server
// runs. Each case's CONCURRENTLY form (pgguard's rewrite, or the one it
// declined) is run on a real PostgreSQL with the catalog pgguard asked.
func TestConcurrentlyWhereServerAllows(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the CONCURRENTLY check against PostgreSQL in -short mode")
	}
	s := pgtest.Must(t, pgtest.Options{})
	if err := s.Exec("CREATE DATABASE conc"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var warnings []string
	cfg, err := pgconn.ParseConfig(s.DSN(pgtest.SuperUser, "conc"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if n.Severity == "WARNING" {
			warnings = append(warnings, n.Message)
		}
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string) error {
		_, err := conn.Exec(ctx, sql).ReadAll()
		return err
	}
	for _, q := range []string{
		"CREATE TABLE ex (r int4range, EXCLUDE USING gist (r WITH &&))",
		"CREATE INDEX ex_plain ON ex (r)",
		"CREATE TABLE pl (a int)",
		"CREATE INDEX pl_a ON pl (a)",
		"CREATE INDEX pl_b ON pl (a)",
		"CREATE TABLE pt (k int) PARTITION BY RANGE (k)",
		"CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (10)",
		"CREATE TABLE ptd PARTITION OF pt DEFAULT",
		"CREATE INDEX pt_k ON pt (k)",
		"CREATE TABLE px (k int) PARTITION BY LIST (k)",
		"CREATE TABLE px1 PARTITION OF px FOR VALUES IN (1)",
		"CREATE TABLE pe (r int4range, k int) PARTITION BY LIST (k)",
		"CREATE TABLE pe1 PARTITION OF pe FOR VALUES IN (1)",
		"ALTER TABLE pe1 ADD EXCLUDE USING gist (r WITH &&)",
		"CREATE SCHEMA clean",
		"CREATE TABLE clean.t (a int, b int4range)",
		"CREATE INDEX ON clean.t (a)",
		"CREATE MATERIALIZED VIEW clean.mv AS SELECT 1 AS a",
		"CREATE INDEX ON clean.mv (a)",
		"CREATE TEMP TABLE tx (r int4range, EXCLUDE USING gist (r WITH &&))",
		"CREATE TEMP TABLE tt (a int)",
		"CREATE INDEX tt_a ON tt (a)",
	} {
		if err := exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// REINDEX SCHEMA takes the temporary schema's real name (pg_temp_3),
	// not pg_temp.
	res, err := conn.Exec(ctx, "SELECT pg_my_temp_schema()::regnamespace::text").ReadAll()
	if err != nil || len(res) != 1 || len(res[0].Rows) != 1 {
		t.Fatalf("the session's temporary schema: %v", err)
	}
	tempSchema := string(res[0].Rows[0][0])
	pcfg, err := policy.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	pcfg.SizeThresholds = policy.SizeThresholds{} // every table counts as large
	eng, err := policy.NewEngine(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	cat := &Catalog{Q: connQuerier{conn: conn, version: s.Version}}
	for _, c := range []struct {
		name string
		// query is the statement as sent; inTx runs it in a transaction
		// block.
		query string
		inTx  bool
		// concurrent is the CONCURRENTLY form pgguard must not produce
		// (run on the server to show that it refuses it or skips work);
		// "" when pgguard rewrites.
		concurrent string
		// hint, when set, must be in the refusal's hint: the recipe.
		hint string
		// untouched: pgguard lets it through as sent (the session's own
		// temporary table: nobody else waits for its locks).
		untouched bool
	}{
		{name: "reindex table with an exclusion constraint's index", query: "REINDEX TABLE ex",
			concurrent: "REINDEX TABLE CONCURRENTLY ex", hint: "REINDEX INDEX public.ex_r_excl;"},
		{name: "reindex partitioned table whose partition has an exclusion index", query: "REINDEX TABLE pe",
			concurrent: "REINDEX TABLE CONCURRENTLY pe", hint: "REINDEX INDEX public.pe1_r_excl;"},
		{name: "reindex an exclusion constraint's index", query: "REINDEX INDEX ex_r_excl",
			concurrent: "REINDEX INDEX CONCURRENTLY ex_r_excl", hint: "REINDEX INDEX ex_r_excl;"},
		{name: "reindex another index of that table", query: "REINDEX INDEX ex_plain"},
		{name: "reindex a system catalog", query: "REINDEX TABLE pg_class", concurrent: "REINDEX TABLE CONCURRENTLY pg_class"},
		{name: "reindex a system catalog's index", query: "REINDEX INDEX pg_class_oid_index", concurrent: "REINDEX INDEX CONCURRENTLY pg_class_oid_index"},
		{name: "reindex a system catalog's TOAST table", query: "REINDEX TABLE pg_toast.pg_toast_1255", concurrent: "REINDEX TABLE CONCURRENTLY pg_toast.pg_toast_1255"},
		{name: "reindex schema pg_catalog", query: "REINDEX SCHEMA pg_catalog", concurrent: "REINDEX SCHEMA CONCURRENTLY pg_catalog"},
		{name: "reindex schema with an exclusion constraint's index", query: "REINDEX SCHEMA public",
			concurrent: "REINDEX SCHEMA CONCURRENTLY public", hint: "REINDEX INDEX public.pe1_r_excl;"},
		{name: "reindex schema without one", query: "REINDEX SCHEMA clean"},
		{name: "reindex schema information_schema", query: "REINDEX SCHEMA information_schema"},
		// A temporary table is reindexed as without CONCURRENTLY,
		// exclusion constraints' indexes included.
		{name: "reindex the session's temporary schema with an exclusion index", query: "REINDEX SCHEMA " + tempSchema},
		{name: "reindex database", query: "REINDEX DATABASE conc",
			concurrent: "REINDEX DATABASE CONCURRENTLY conc", hint: "REINDEX SYSTEM conc;"},
		{name: "reindex database: its exclusion indexes", query: "REINDEX DATABASE conc",
			concurrent: "REINDEX DATABASE CONCURRENTLY conc", hint: "REINDEX INDEX public.ex_r_excl;"},
		{name: "reindex system", query: "REINDEX SYSTEM conc", concurrent: "REINDEX SYSTEM CONCURRENTLY conc"},
		{name: "reindex a partitioned table", query: "REINDEX TABLE pt"},
		{name: "reindex a partitioned index", query: "REINDEX INDEX pt_k"},
		{name: "reindex a temporary table", query: "REINDEX TABLE tt", untouched: true},
		{name: "reindex in a transaction block", query: "REINDEX TABLE pl", inTx: true, concurrent: "REINDEX TABLE CONCURRENTLY pl"},
		{name: "reindex beside another statement", query: "REINDEX TABLE pl; SELECT 1", concurrent: "REINDEX TABLE CONCURRENTLY pl; SELECT 1"},
		{name: "create index on a partitioned table", query: "CREATE INDEX pt_k2 ON pt (k)",
			concurrent: "CREATE INDEX CONCURRENTLY pt_k2 ON pt (k)", hint: "ON ONLY pt"},
		{name: "create index on a temporary table", query: "CREATE INDEX tt_b ON tt (a)", untouched: true},
		{name: "create index", query: "CREATE INDEX pl_c ON pl (a)"},
		{name: "create index in a transaction block", query: "CREATE INDEX pl_d ON pl (a)", inTx: true, concurrent: "CREATE INDEX CONCURRENTLY pl_d ON pl (a)"},
		{name: "drop a partitioned index", query: "DROP INDEX pt_k", concurrent: "DROP INDEX CONCURRENTLY pt_k"},
		{name: "drop two indexes", query: "DROP INDEX pl_a, ex_plain", concurrent: "DROP INDEX CONCURRENTLY pl_a, ex_plain"},
		{name: "drop index cascade", query: "DROP INDEX pl_a CASCADE", concurrent: "DROP INDEX CONCURRENTLY pl_a CASCADE"},
		{name: "drop index in a transaction block", query: "DROP INDEX pl_a", inTx: true, concurrent: "DROP INDEX CONCURRENTLY pl_a"},
		{name: "drop a temporary table's index", query: "DROP INDEX tt_a", untouched: true},
		{name: "drop index", query: "DROP INDEX pl_b"},
		{name: "detach from a table with a default partition", query: "ALTER TABLE pt DETACH PARTITION pt1",
			concurrent: "ALTER TABLE pt DETACH PARTITION pt1 CONCURRENTLY"},
		{name: "detach in a transaction block", query: "ALTER TABLE px DETACH PARTITION px1", inTx: true,
			concurrent: "ALTER TABLE px DETACH PARTITION px1 CONCURRENTLY"},
		{name: "detach", query: "ALTER TABLE px DETACH PARTITION px1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc := &policy.Context{Alone: true, InTransaction: c.inTx, ServerVersion: s.Version, Catalog: cat}
			ds, err := eng.DecideQuery(ctx, c.query, sc)
			if err != nil || len(ds) == 0 {
				t.Fatalf("DecideQuery: %v", err)
			}
			d := ds[0].Decision
			if c.untouched {
				if d.Action != policy.Allow || len(d.Findings) > 0 {
					t.Errorf("%q: %v %+v, want it let through as sent", c.query, d.Action, d.Findings)
				}
				if err := exec(c.query); err != nil {
					t.Errorf("the server fails %q: %v", c.query, err)
				}
				return
			}
			form := c.concurrent
			if d.Action == policy.Rewrite {
				if c.concurrent != "" {
					t.Errorf("pgguard rewrites %q to %q; PostgreSQL refuses %q or skips part of it", c.query, d.Rewritten, c.concurrent)
				}
				form = d.Rewritten
			} else if c.concurrent == "" {
				t.Errorf("pgguard does not rewrite %q (%v %+v), which PostgreSQL runs concurrently", c.query, d.Action, d.Findings)
				return
			}
			if c.hint != "" {
				found := false
				for _, f := range d.Findings {
					found = found || strings.Contains(f.Hint, c.hint)
				}
				if !found {
					t.Errorf("%q: no finding's hint holds %q: %+v", c.query, c.hint, d.Findings)
				}
			}
			// The server's word on the CONCURRENTLY form.
			warnings = warnings[:0]
			run := form
			if c.inTx {
				run = "BEGIN; " + form + "; COMMIT"
			}
			err = exec(run)
			if c.inTx {
				_ = exec("ROLLBACK")
			}
			skipped := false
			for _, w := range warnings {
				skipped = skipped || strings.Contains(w, "skipping")
			}
			switch {
			case d.Action == policy.Rewrite && (err != nil || skipped):
				t.Errorf("the server fails pgguard's rewrite %q: %v %v", form, err, warnings)
			case d.Action != policy.Rewrite && err == nil && !skipped:
				t.Errorf("the server runs %q whole, which pgguard declined to rewrite to", form)
			}
		})
	}
}
