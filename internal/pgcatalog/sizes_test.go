package pgcatalog

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// connect opens a pgguard-own connection to db as the SCRAM role, as a
// target's monitor: block does.
func connect(t testing.TB, pg *pgtest.Server, db string) *ConnQuerier {
	t.Helper()
	ctx := context.Background()
	conn, err := Connect(ctx, ConnSpec{Upstream: pg.Addr(), User: pgtest.SCRAMUser, Password: pgtest.Password, Database: db, ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &ConnQuerier{Ctx: ctx, Conn: conn}
}

func mustExec(t testing.TB, q *ConnQuerier, sql string) {
	t.Helper()
	if _, err := q.Conn.Exec(q.Ctx, sql).ReadAll(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestExportAgreesWithTheSessionCatalog exports a database and checks
// every table's rows against what the session catalog (TableSize, run on
// the same server) answers for it, and every partition's parent and
// index's table against pg_inherits and pg_index: the sizes a target
// borrows are the sizes its source's own sessions are judged with.
func TestExportAgreesWithTheSessionCatalog(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	db, err := pg.CreateDatabase("export")
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec("ALTER DATABASE export OWNER TO " + pgtest.SCRAMUser); err != nil {
		t.Fatal(err)
	}
	q := connect(t, pg, db)
	mustExec(t, q, "SET default_transaction_read_only = off")
	for _, sql := range []string{
		"CREATE TABLE accounts (id bigint PRIMARY KEY, email text)",
		"INSERT INTO accounts SELECT g, 'a' || g FROM generate_series(1, 5000) g",
		"CREATE INDEX accounts_email ON accounts (email)",
		`CREATE TABLE "JournalLine" (id int)`,
		`INSERT INTO "JournalLine" SELECT generate_series(1, 700)`,
		"CREATE SCHEMA billing",
		"CREATE TABLE billing.invoices (id int, note text)",
		"INSERT INTO billing.invoices SELECT g, (SELECT string_agg(md5(random()::text || g || k), '') FROM generate_series(1, 100) k) FROM generate_series(1, 50) g",
		"CREATE TABLE events (at date, n int) PARTITION BY RANGE (at)",
		"CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
		"CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY RANGE (at)",
		"CREATE TABLE events_2026_h1 PARTITION OF events_2026 FOR VALUES FROM ('2026-01-01') TO ('2026-07-01')",
		"CREATE INDEX events_n ON events (n)",
		"INSERT INTO events SELECT date '2025-01-01' + (g % 500), g FROM generate_series(1, 3000) g",
		"CREATE MATERIALIZED VIEW account_emails AS SELECT email FROM accounts",
		// VACUUM sets the TOAST tables' relpages too, as autovacuum does.
		"VACUUM ANALYZE",
		"CREATE TABLE never_analyzed (id int)",
		"INSERT INTO never_analyzed SELECT generate_series(1, 1234)",
	} {
		mustExec(t, q, sql)
	}
	// The live-row counts reach the statistics a moment after the insert.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rows, _ := q.Query("SELECT pg_catalog.pg_stat_get_live_tuples('never_analyzed'::regclass)")
		if len(rows) == 1 && rows[0][0] != nil && *rows[0][0] != "0" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	f, err := Export(q, time.Now())
	if err != nil {
		t.Fatalf("%v (%v)", err, q.Err)
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := ReadSizeFile(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if back.Database != db || back.ServerVersionNum != q.ServerVersion() && q.ServerVersion()/10000 != back.ServerVersionNum/10000 || len(back.Relations) != len(f.Relations) {
		t.Fatalf("round trip: got %+v", back)
	}
	s := NewSizes(back, "production")
	own := &Catalog{Q: q}
	ctx := context.Background()

	// Every relation pg_class lists outside the system schemas is there.
	rows, ok := q.Query("SELECT n.nspname, c.relname, c.relkind::text, COALESCE((SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition), ''), " +
		"COALESCE((SELECT x.indrelid::regclass::text FROM pg_index x WHERE x.indexrelid = c.oid), ''), c.reltuples >= 0 " +
		"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'billing') AND c.relkind IN ('r', 'p', 'm', 'i', 'I')")
	if !ok || len(rows) < 12 {
		t.Fatalf("listing relations: %v %d", q.Err, len(rows))
	}
	for _, r := range rows {
		schema, name, kind, parent, table := *r[0], *r[1], *r[2], *r[3], *r[4]
		qualified := policy.Table{Schema: schema, Name: name}.String()
		rel := s.Relation(schema, name)
		if rel == nil {
			t.Errorf("%s is not in the export", qualified)
			continue
		}
		if rel.Kind != kinds[kind] {
			t.Errorf("%s: kind %q, pg_class says %q", qualified, rel.Kind, kind)
		}
		// regclass::text qualifies only outside the search_path.
		if strings.TrimPrefix(rel.Parent, "public.") != parent || strings.TrimPrefix(rel.Table, "public.") != table {
			t.Errorf("%s: parent %q table %q, catalog says %q %q", qualified, rel.Parent, rel.Table, parent, table)
		}
		if rel.Analyzed != IsTrue(r[5]) {
			t.Errorf("%s: analyzed %v, reltuples says %v", qualified, rel.Analyzed, IsTrue(r[5]))
		}
		want, ok := own.TableSize(ctx, qualified)
		got, gotOK := s.TableSize(schema, name)
		if !ok || !gotOK || got.Rows != want.Rows {
			t.Errorf("%s: exported rows %d (%v), the session catalog's %d (%v)", qualified, got.Rows, gotOK, want.Rows, ok)
		}
		if got.From != "production (sizes as of "+back.ExportedAt.UTC().Format("2006-01-02 15:04")+" UTC)" {
			t.Errorf("%s: from %q", qualified, got.From)
		}
		// Bytes come from relpages: after ANALYZE they are the main forks
		// of the heap, TOAST and indexes, which pg_total_relation_size
		// counts with the free-space and visibility maps.
		if kind != "p" && kind != "I" && rel.Analyzed && (got.Bytes > want.Bytes || got.Bytes*2 < want.Bytes) {
			t.Errorf("%s: exported %d bytes, pg_total_relation_size %d", qualified, got.Bytes, want.Bytes)
		}
	}
	// Sanity of the fixture itself: what the checks above compare.
	if sz, _ := s.TableSize("public", "events"); sz.Rows < 3000 || sz.Bytes <= 0 {
		t.Errorf("events: %+v, want its partitions' rows (at least the 3,000 inserted) and bytes", sz)
	}
	if sz, _ := s.TableSize("public", "never_analyzed"); sz.Rows != 1234 {
		t.Errorf("never_analyzed: %d rows, want the live count 1234", sz.Rows)
	}
	if sz, _ := s.TableSize("billing", "invoices"); sz.Bytes < 50*3000/4 {
		t.Errorf("billing.invoices: %d bytes: its TOAST is not counted", sz.Bytes)
	}
}

// TestExportManyRelations exports a catalog of many tables, every one of
// them, and logs how long it took: PGGUARD_SIZES_RELATIONS=100000 for the
// full-size figure (a few minutes to create); make test uses 3,000.
func TestExportManyRelations(t *testing.T) {
	n := 3000
	if v := os.Getenv("PGGUARD_SIZES_RELATIONS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	pg := pgtest.Must(t, pgtest.Options{})
	db, err := pg.CreateDatabase("many")
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec("ALTER DATABASE many OWNER TO " + pgtest.SCRAMUser); err != nil {
		t.Fatal(err)
	}
	q := connect(t, pg, db)
	mustExec(t, q, "SET default_transaction_read_only = off")
	mustExec(t, q, "SET statement_timeout = 0")
	start := time.Now()
	for i := 0; i < n; i += 1000 {
		// One transaction per thousand: each CREATE TABLE holds a lock
		// until commit, and the lock table holds a few thousand.
		mustExec(t, q, fmt.Sprintf("DO $$ BEGIN FOR i IN %d..%d LOOP EXECUTE format('CREATE TABLE t%%s (id int)', i); END LOOP; END $$", i, min(i+999, n-1)))
	}
	t.Logf("created %d tables in %s", n, time.Since(start).Round(time.Millisecond))
	if os.Getenv("PGGUARD_SIZES_VACUUM") != "" {
		// Every table vacuumed (reltuples 0): none is sized from its
		// files, the export is its one catalog query.
		start = time.Now()
		mustExec(t, q, "VACUUM")
		t.Logf("vacuumed in %s", time.Since(start).Round(time.Millisecond))
	}
	fromFiles := 0
	defer func() { t.Logf("%d relations sized from their files", fromFiles) }()
	start = time.Now()
	f, err := Export(q, time.Now())
	took := time.Since(start)
	if err != nil {
		t.Fatalf("%v (%v)", err, q.Err)
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	t.Logf("exported %d relations in %s (%d bytes of JSON)", len(f.Relations), took.Round(time.Millisecond), buf.Len())
	if len(f.Relations) != n {
		t.Errorf("exported %d relations, want %d", len(f.Relations), n)
	}
	for _, r := range f.Relations {
		if r.SizedFromFiles {
			fromFiles++
		}
	}
	// How long it took is a figure (bench/results/2026-12-07-sizes-export.md),
	// not a pass/fail: a loaded machine would fail a timing assertion.
}

// fakeSource is a SizeSource that cannot be read.
type fakeSource struct{ err error }

func (f fakeSource) Sizes() (*Sizes, error) { return nil, f.err }

// TestBorrowedSizes: a borrowed catalog answers sizes of the tables its
// source knows from the source (resolving unqualified names in the
// session's own database, whose search_path may differ), scales row
// estimates to the source's size, leaves tables the source does not know
// and everything that is not a size to the own database, and falls back
// to the own database when the source cannot be read.
func TestBorrowedSizes(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	for _, db := range []string{"uat", "production"} {
		if _, err := pg.CreateDatabase(db); err != nil {
			t.Fatal(err)
		}
		if err := pg.Exec("ALTER DATABASE " + db + " OWNER TO " + pgtest.SCRAMUser); err != nil {
			t.Fatal(err)
		}
	}
	schema := []string{
		"SET default_transaction_read_only = off",
		"CREATE SCHEMA app",
		"CREATE TABLE app.accounts (id int PRIMARY KEY, status text)",
	}
	prod, uat := connect(t, pg, "production"), connect(t, pg, "uat")
	for _, sql := range schema {
		mustExec(t, prod, sql)
		mustExec(t, uat, sql)
	}
	mustExec(t, prod, "INSERT INTO app.accounts SELECT g, CASE WHEN g % 4 = 0 THEN 'closed' ELSE 'open' END FROM generate_series(1, 40000) g")
	analyze(t, prod)
	mustExec(t, uat, "INSERT INTO app.accounts SELECT g, CASE WHEN g % 4 = 0 THEN 'closed' ELSE 'open' END FROM generate_series(1, 40) g")
	mustExec(t, uat, "CREATE TABLE app.only_here (id int)")
	mustExec(t, uat, "INSERT INTO app.only_here SELECT generate_series(1, 30)")
	analyze(t, uat)
	mustExec(t, uat, "SET search_path = app, public")
	f, err := Export(prod, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	src := NewSizes(f, "production")
	b := &Borrowed{Catalog: &Catalog{Q: uat}, Src: StaticSizes{src}}
	ctx := context.Background()
	prodCat := &Catalog{Q: prod}

	want, _ := prodCat.TableSize(ctx, "app.accounts")
	for _, name := range []string{"accounts", "app.accounts"} {
		got, ok := b.TableSize(ctx, name)
		if !ok || got.Rows != want.Rows || got.From == "" {
			t.Errorf("TableSize(%s) = %+v, %v; production's is %+v", name, got, ok, want)
		}
		if b.SizesFrom(ctx, name) != src.From() {
			t.Errorf("SizesFrom(%s) = %q", name, b.SizesFrom(ctx, name))
		}
	}
	ownOnly, _ := b.Catalog.TableSize(ctx, "only_here")
	if got, ok := b.TableSize(ctx, "only_here"); !ok || got != ownOnly || got.Rows != 30 {
		t.Errorf("a table production lacks: %+v, %v; want its own %+v", got, ok, ownOnly)
	}
	// Row estimates: the share of the own table, of production's rows; the
	// planner on production is the oracle (the same distribution).
	for _, sql := range []string{"UPDATE accounts SET status = 'x'", "DELETE FROM app.accounts WHERE status = 'closed'"} {
		got, ok := b.EstimateRows(ctx, sql)
		truth, _ := prodCat.EstimateRows(ctx, strings.Replace(sql, " accounts", " app.accounts", 1))
		if !ok || got < truth*8/10 || got > truth*12/10 {
			t.Errorf("EstimateRows(%s) = %d, %v; production's planner says %d", sql, got, ok, truth)
		}
	}
	n, ok := b.CountRows(ctx, "SELECT 1 FROM accounts WHERE status = 'closed'", 100000)
	if !ok || n != 10000 {
		t.Errorf("CountRows scaled: %d, %v; want 10 of 40 own rows as a share of 40,000", n, ok)
	}
	// Not sizes: the own database's.
	if exists, valid, ok := b.Index(ctx, "app.accounts_pkey"); !exists || !valid || !ok {
		t.Errorf("Index: %v %v %v", exists, valid, ok)
	}
	// A source that cannot be read: the own catalog, never small.
	down := &Borrowed{Catalog: &Catalog{Q: uat}, Src: fakeSource{fmt.Errorf("connection refused")}}
	ownAccounts, _ := b.Catalog.TableSize(ctx, "accounts")
	if got, ok := down.TableSize(ctx, "accounts"); !ok || got != ownAccounts || down.SizesFrom(ctx, "accounts") != "" {
		t.Errorf("unreadable source: %+v, %v; want the own %+v", got, ok, ownAccounts)
	}
}

// analyze runs ANALYZE once the inserts' counts have reached the
// statistics (PostgreSQL 15 flushes a backend's counts at most once a
// second; flushed after ANALYZE, they would count the rows twice).
func analyze(t *testing.T, q *ConnQuerier) {
	t.Helper()
	mustExec(t, q, "SELECT pg_catalog.pg_stat_force_next_flush()")
	mustExec(t, q, "ANALYZE")
}

// TestResolveByRecordedSearchPath: an unqualified name is resolved by the
// search_path the export recorded (app before public), public when the
// file records none (format 1), and by the only relation of that name
// when the path holds none; an index's key counts as unique only when it
// is unique, valid and not partial there, and a format 1 file knows no
// key.
func TestResolveByRecordedSearchPath(t *testing.T) {
	rels := []SizeRelation{
		{Schema: "app", Name: "accounts", Kind: "table", Rows: 30000},
		{Schema: "public", Name: "accounts", Kind: "table", Rows: 5},
		{Schema: "billing", Name: "invoices", Kind: "table", Rows: 700},
		{Schema: "app", Name: "accounts_pkey", Kind: "index", Table: "app.accounts", Unique: true, Valid: true, Columns: []string{"id"}},
		{Schema: "app", Name: "accounts_tenant", Kind: "index", Table: "app.accounts", Unique: true, Valid: false, Columns: []string{"tenant_id"}},
		{Schema: "app", Name: "accounts_email", Kind: "index", Table: "app.accounts", Unique: true, Valid: true, Partial: true, Columns: []string{"email"}},
	}
	s := NewSizes(&SizeFile{Format: 2, SearchPath: []string{"app"}, ExportedAt: time.Now(), Relations: rels}, "production")
	if r := s.Resolve(policy.Table{Name: "accounts"}); r == nil || r.Schema != "app" {
		t.Errorf("accounts with search_path app: %+v", r)
	}
	if r := s.Resolve(policy.Table{Name: "invoices"}); r == nil || r.Schema != "billing" {
		t.Errorf("invoices, the only one of its name: %+v", r)
	}
	if keys := s.UniqueKeys("app", "accounts"); fmt.Sprint(keys) != "[[id]]" {
		t.Errorf("unique keys of app.accounts: %v, want [[id]] (tenant_id is not valid, email is partial)", keys)
	}
	old := NewSizes(&SizeFile{Format: 1, ExportedAt: time.Now(), Relations: rels}, "production")
	if r := old.Resolve(policy.Table{Name: "accounts"}); r == nil || r.Schema != "public" {
		t.Errorf("accounts in a format 1 file: %+v, want public's", r)
	}
	if keys := old.UniqueKeys("app", "accounts"); keys != nil {
		t.Errorf("a format 1 file knows unique keys: %v", keys)
	}
}
