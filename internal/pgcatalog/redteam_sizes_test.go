package pgcatalog

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// redteamDatabases creates production and uat owned by the SCRAM role and
// returns a connection to each.
func redteamDatabases(t *testing.T) (prod, uat *ConnQuerier) {
	t.Helper()
	_, prod, uat = redteamServer(t)
	return prod, uat
}

// redteamServer is redteamDatabases with the server they are on.
func redteamServer(t *testing.T) (pg *pgtest.Server, prod, uat *ConnQuerier) {
	t.Helper()
	pg = pgtest.Must(t, pgtest.Options{})
	for _, db := range []string{"uat", "production"} {
		if _, err := pg.CreateDatabase(db); err != nil {
			t.Fatal(err)
		}
		if err := pg.Exec("ALTER DATABASE " + db + " OWNER TO " + pgtest.SCRAMUser); err != nil {
			t.Fatal(err)
		}
	}
	prod, uat = connect(t, pg, "production"), connect(t, pg, "uat")
	mustExec(t, prod, "SET default_transaction_read_only = off")
	mustExec(t, uat, "SET default_transaction_read_only = off")
	return pg, prod, uat
}

// borrowFromProduction is uat's catalog borrowing the sizes (and the
// planner) of database production on pg, read once, as a target with
// sizes_from: production judges.
func borrowFromProduction(t *testing.T, pg *pgtest.Server, uat *ConnQuerier) *Borrowed {
	t.Helper()
	live := NewLiveSizes("production", ConnSpec{Upstream: pg.Addr(), User: pgtest.SCRAMUser, Password: pgtest.Password, Database: "production", ConnectTimeout: 5 * time.Second}, time.Minute, nil)
	if err := live.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &Borrowed{Catalog: &Catalog{Q: uat}, Src: live}
}

// TestRedteamPartitionedNamesQuotedByPostgres: a partition's parent is
// exported as PostgreSQL's quote_ident spells it, and a partitioned
// table's rows are summed from the partitions whose parent string equals
// policy.QuoteIdent's spelling of it. The two spell some names
// differently: quote_ident quotes a name with "$" (only a-z, 0-9 and _
// are bare) and leaves system_user bare on PostgreSQL 15 (a keyword only
// from 16). Such a partitioned table then has no partitions in the
// export, 0 rows and 0 bytes: small, where production's own catalog sums
// its partitions.
func TestRedteamPartitionedNamesQuotedByPostgres(t *testing.T) {
	prod, uat := redteamDatabases(t)
	tables := []string{`"ev$log"`, `system_user`, `"my$app".events`}
	mustExec(t, prod, `CREATE SCHEMA "my$app"`)
	mustExec(t, uat, `CREATE SCHEMA "my$app"`)
	for _, tb := range tables {
		// The partition: the parent's name with _p, in its schema.
		part := `"` + strings.ReplaceAll(strings.ReplaceAll(tb, `"`, ""), ".", `"."`) + `_p"`
		for _, q := range []*ConnQuerier{prod, uat} {
			mustExec(t, q, "CREATE TABLE "+tb+" (id int, n int) PARTITION BY RANGE (id)")
			mustExec(t, q, "CREATE TABLE "+part+" PARTITION OF "+tb+" FOR VALUES FROM (0) TO (100000000)")
		}
		mustExec(t, prod, "INSERT INTO "+tb+" SELECT g, g FROM generate_series(1, 30000) g")
		mustExec(t, uat, "INSERT INTO "+tb+" SELECT g, g FROM generate_series(1, 10) g")
	}
	for _, q := range []*ConnQuerier{prod, uat} {
		mustExec(t, q, "SELECT pg_catalog.pg_stat_force_next_flush()")
		mustExec(t, q, "VACUUM ANALYZE")
	}
	f, err := Export(prod, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	src := NewSizes(f, "production")
	b := &Borrowed{Catalog: &Catalog{Q: uat}, Src: StaticSizes{src}}
	prodCat := &Catalog{Q: prod}
	ctx := context.Background()
	for _, tb := range tables {
		want, _ := prodCat.TableSize(ctx, tb)
		got, ok := b.TableSize(ctx, tb)
		if !ok || got.Rows != want.Rows || want.Rows < 30000 {
			t.Errorf("%s: uat borrowing production's sizes says %d rows (%v); production's own catalog says %d", tb, got.Rows, ok, want.Rows)
		}
	}
}

// TestRedteamBorrowedCountStoppedAtLimit: UAT bigger than production.
// Rule large-dml counts the rows of an estimate it does not trust up to
// its limit and one more; Borrowed scales that count as a share of UAT's
// rows. A count that stopped at the limit is not the statement's share:
// scaled down it turns "more than the limit" into a fraction of it, and
// UAT lets through what production refuses.
func TestRedteamBorrowedCountStoppedAtLimit(t *testing.T) {
	prod, uat := redteamDatabases(t)
	for _, q := range []*ConnQuerier{prod, uat} {
		mustExec(t, q, "CREATE TABLE accounts (id int PRIMARY KEY, status text)")
	}
	mustExec(t, prod, "INSERT INTO accounts SELECT g, CASE WHEN g % 4 = 0 THEN 'closed' ELSE 'open' END FROM generate_series(1, 1500) g")
	mustExec(t, uat, "INSERT INTO accounts SELECT g, CASE WHEN g % 4 = 0 THEN 'closed' ELSE 'open' END FROM generate_series(1, 4000) g")
	for _, q := range []*ConnQuerier{prod, uat} {
		analyze(t, q)
	}
	b := borrowFrom(t, prod, uat)
	ctx := context.Background()
	const limit = 1001 // large_dml.max_rows 1,000 and one more, as the rule counts
	sql := "SELECT 1 FROM accounts WHERE status = 'open'"
	truth, _ := (&Catalog{Q: prod}).CountRows(ctx, sql, limit)
	got, ok := b.CountRows(ctx, sql, limit)
	if truth < limit {
		t.Fatalf("production counts %d, want the limit reached", truth)
	}
	if !ok || got < limit {
		t.Errorf("uat's count scaled to production: %d (%v); production counts %d (more than 1,000): uat would allow what production refuses", got, ok, truth)
	}
	// Below the limit in production, below it scaled.
	small := "SELECT 1 FROM accounts WHERE status = 'closed'" // 375 in production, 1,000 in uat
	truth, _ = (&Catalog{Q: prod}).CountRows(ctx, small, limit)
	if got, ok := b.CountRows(ctx, small, limit); !ok || got >= limit || got < truth*8/10 || got > truth*12/10 {
		t.Errorf("closed: scaled %d (%v), production counts %d", got, ok, truth)
	}
}

// TestRedteamHostileSizesFile: a sizes file pgguard sizes export could
// never write is read as if it were production's. Duplicate entries of a
// partition count its rows twice (and the last entry of a table wins),
// negative rows pass as a small table, and a file without exported_at is
// used while /readiness and the metrics say no sizes are in use (its age
// is taken from the zero time).
func TestRedteamHostileSizesFile(t *testing.T) {
	for name, body := range map[string]string{
		"duplicate": `{"format":1,"database":"production","exported_at":"2026-12-07T10:42:00Z","relations":[
			{"schema":"public","name":"accounts","kind":"table","rows":300000,"bytes":26000000},
			{"schema":"public","name":"accounts","kind":"table","rows":1,"bytes":8192}]}`,
		"negative rows": `{"format":1,"database":"production","exported_at":"2026-12-07T10:42:00Z","relations":[
			{"schema":"public","name":"accounts","kind":"table","rows":-300000,"bytes":-1}]}`,
		"no exported_at": `{"format":1,"database":"production","relations":[
			{"schema":"public","name":"accounts","kind":"table","rows":300000,"bytes":26000000}]}`,
		"unknown kind": `{"format":1,"database":"production","exported_at":"2026-12-07T10:42:00Z","relations":[
			{"schema":"public","name":"accounts","kind":"tabel","rows":300000,"bytes":26000000}]}`,
	} {
		if _, err := ReadSizeFile(strings.NewReader(body)); err == nil {
			t.Errorf("%s: a file pgguard sizes export never writes is accepted", name)
		}
	}
}

// TestRedteamNeverAnalyzedAfterStatsReset: a production table bulk-loaded
// and never vacuumed or analyzed (reltuples -1, relpages 0), whose
// statistics counters are then lost (pg_stat_reset, a crash, a failover
// to a replica, whose counters start empty): production's own catalog
// sizes it from its files (pg_total_relation_size, 0 rows but megabytes:
// large), the export from relpages and the counters: 0 rows, 0 bytes,
// small. The file marks it "analyzed": false, which nothing reads.
func TestRedteamNeverAnalyzedAfterStatsReset(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	for _, db := range []string{"uat", "production"} {
		if _, err := pg.CreateDatabase(db); err != nil {
			t.Fatal(err)
		}
		if err := pg.Exec("ALTER DATABASE " + db + " OWNER TO " + pgtest.SCRAMUser); err != nil {
			t.Fatal(err)
		}
	}
	su, err := pgconn.Connect(context.Background(), pg.DSN(pgtest.SuperUser, "production"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := su.Exec(context.Background(), "GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_reset() TO "+pgtest.SCRAMUser).ReadAll(); err != nil {
		t.Fatal(err)
	}
	su.Close(context.Background())
	prod, uat := connect(t, pg, "production"), connect(t, pg, "uat")
	for _, q := range []*ConnQuerier{prod, uat} {
		mustExec(t, q, "SET default_transaction_read_only = off")
		mustExec(t, q, "CREATE TABLE docs (id bigint, body text) WITH (autovacuum_enabled = false)")
	}
	mustExec(t, prod, "INSERT INTO docs SELECT g, md5(g::text) FROM generate_series(1, 250000) g")
	mustExec(t, uat, "INSERT INTO docs SELECT g, md5(g::text) FROM generate_series(1, 10) g")
	mustExec(t, prod, "SELECT pg_catalog.pg_stat_force_next_flush()")
	mustExec(t, prod, "SELECT pg_catalog.pg_stat_reset()")
	b := borrowFrom(t, prod, uat)
	ctx := context.Background()
	want, _ := (&Catalog{Q: prod}).TableSize(ctx, "docs")
	got, ok := b.TableSize(ctx, "docs")
	const rows, bytes = 10000, 10 << 20 // the default size thresholds
	if want.Rows < rows && want.Bytes < bytes {
		t.Fatalf("production's own catalog: %+v, want large", want)
	}
	if !ok || got.Rows < rows && got.Bytes < bytes {
		t.Errorf("borrowed: %+v (%v); production's own catalog: %+v", got, ok, want)
	}
}

// TestRedteamEmptyOwnTableScaledToAll: uat's table is empty (the release
// creates its rows later, or uat was never seeded). Every estimate of it,
// however selective, is scaled to all of production's rows: an UPDATE of
// 10 rows by a range on the primary key, which production's planner
// estimates at 10 rows, is judged in uat as one of all 1,500 (of 300,000
// in a real production: refused in uat, allowed in production). Documented
// ("all of them when the session's table is empty"), but it is not "as
// production would".
//
// Fixed for a live source (sizes_from): uat borrows production's sizes
// through LiveSizes, which asks production's own planner (EXPLAIN of the
// SELECT form over the monitor connection) when the own table is empty.
func TestRedteamEmptyOwnTableScaledToAll(t *testing.T) {
	pg, prod, uat := redteamServer(t)
	for _, q := range []*ConnQuerier{prod, uat} {
		mustExec(t, q, "CREATE TABLE accounts (id int PRIMARY KEY, status text)")
	}
	mustExec(t, prod, "INSERT INTO accounts SELECT g, 'open' FROM generate_series(1, 1500) g")
	for _, q := range []*ConnQuerier{prod, uat} {
		analyze(t, q)
	}
	live := NewLiveSizes("production", ConnSpec{Upstream: pg.Addr(), User: pgtest.SCRAMUser, Password: pgtest.Password, Database: "production", ConnectTimeout: 5 * time.Second}, time.Minute, nil)
	if err := live.Read(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := &Borrowed{Catalog: &Catalog{Q: uat}, Src: live}
	ctx := context.Background()
	sql := "UPDATE accounts SET status = 'x' WHERE id <= 10"
	truth, _ := (&Catalog{Q: prod}).EstimateRows(ctx, sql)
	got, ok := b.EstimateRows(ctx, sql)
	if !ok || got > 10*truth+10 {
		t.Errorf("uat (empty) scaled: %d rows (%v); production's planner: %d", got, ok, truth)
	}
	// Every row: production's planner says all of them too.
	if got, ok := b.EstimateRows(ctx, "UPDATE accounts SET status = 'x'"); !ok || got < 1500 {
		t.Errorf("uat (empty), every row: %d (%v), want production's 1,500", got, ok)
	}
}

// TestBorrowedEmptyOwnTableFromFile: with a file there is no planner to
// ask, and an empty own table says nothing of a statement's share: the
// estimate is all of the source's rows (documented in environments.md).
// A role that may not read the table on a live source gets the same.
func TestBorrowedEmptyOwnTableFromFile(t *testing.T) {
	pg, prod, uat := redteamServer(t)
	for _, q := range []*ConnQuerier{prod, uat} {
		mustExec(t, q, "CREATE TABLE accounts (id int PRIMARY KEY, status text)")
	}
	mustExec(t, prod, "INSERT INTO accounts SELECT g, 'open' FROM generate_series(1, 1500) g")
	for _, q := range []*ConnQuerier{prod, uat} {
		analyze(t, q)
	}
	ctx := context.Background()
	sql := "UPDATE accounts SET status = 'x' WHERE id <= 10"
	if got, ok := borrowFrom(t, prod, uat).EstimateRows(ctx, sql); !ok || got != 1500 {
		t.Errorf("file, empty own table: %d (%v), want all of production's 1,500", got, ok)
	}
	// A monitor role without SELECT on the table: no EXPLAIN is sent.
	if err := pg.Exec("CREATE ROLE pgguard_monitor LOGIN PASSWORD '" + pgtest.Password + "'"); err != nil {
		t.Fatal(err)
	}
	live := NewLiveSizes("production", ConnSpec{Upstream: pg.Addr(), User: "pgguard_monitor", Password: pgtest.Password, Database: "production", ConnectTimeout: 5 * time.Second}, time.Minute, nil)
	if err := live.Read(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := (&Borrowed{Catalog: &Catalog{Q: uat}, Src: live}).EstimateRows(ctx, sql); !ok || got != 1500 {
		t.Errorf("live source, monitor may not read accounts: %d (%v), want all of production's 1,500", got, ok)
	}
	if _, ok := live.EstimateRowsAt(ctx, sql, policy.Table{Schema: "public", Name: "accounts"}); ok {
		t.Errorf("the monitor role may not read accounts, yet its planner was asked")
	}
}

// borrowFrom exports prod's sizes and returns uat's catalog judging with
// them, as a target with sizes_file does.
func borrowFrom(t *testing.T, prod, uat *ConnQuerier) *Borrowed {
	t.Helper()
	f, err := Export(prod, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &Borrowed{Catalog: &Catalog{Q: uat}, Src: StaticSizes{NewSizes(f, "production")}}
}
