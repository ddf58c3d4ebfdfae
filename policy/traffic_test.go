package policy

import (
	"context"
	"github.com/pgguard/pgguard/policy/sqltext"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// appTraffic is what applications send: pgbench, ORMs (Sequelize, TypeORM,
// Prisma) and drivers (node-postgres, pgjdbc). None of it takes a lock
// stronger than ROW EXCLUSIVE, so none of it may cost a parse or a
// catalog round trip.
var appTraffic = []string{
	// reads of every shape
	"SELECT abalance FROM pgbench_accounts WHERE aid = 42",
	"WITH r AS (SELECT aid, abalance FROM pgbench_accounts WHERE aid = 42) SELECT * FROM r",
	"WITH r AS (SELECT aid, abalance FROM pgbench_accounts WHERE aid = $1) SELECT * FROM r",
	"WITH a AS MATERIALIZED (SELECT bid FROM pgbench_branches), b AS NOT MATERIALIZED (SELECT tid FROM pgbench_tellers) SELECT * FROM a, b",
	"WITH RECURSIVE t(n) AS (VALUES (1) UNION ALL SELECT n + 1 FROM t WHERE n < 100) SELECT sum(n) FROM t",
	"WITH RECURSIVE tree AS (SELECT id, parent_id FROM nodes WHERE id = $1 UNION ALL SELECT n.id, n.parent_id FROM nodes n JOIN tree ON n.parent_id = tree.id) SEARCH DEPTH FIRST BY id SET ordercol SELECT * FROM tree ORDER BY ordercol",
	"SELECT b.bid, count(*), sum(a.abalance) FROM pgbench_accounts a JOIN pgbench_branches b ON b.bid = a.bid WHERE a.aid BETWEEN $1 AND $2 GROUP BY b.bid ORDER BY 2 DESC",
	`SELECT * FROM "User" WHERE "id" IN (SELECT "userId" FROM "Post" WHERE "published" = true)`,
	`SELECT "id", row_number() OVER (PARTITION BY "accountId" ORDER BY "createdAt") AS rn FROM "JournalLine"`,
	`SELECT * FROM "Job" WHERE "status" = $1 ORDER BY "id" LIMIT 10 FOR UPDATE SKIP LOCKED`,
	"SELECT * FROM pgbench_accounts WHERE aid = $1 FOR UPDATE",
	"SELECT * FROM pgbench_accounts a JOIN pgbench_branches b USING (bid) WHERE aid = $1 FOR NO KEY UPDATE OF a NOWAIT",
	"SELECT * FROM pgbench_tellers WHERE tid = 3 FOR SHARE",
	"WITH j AS (SELECT id FROM jobs WHERE state = 'new' LIMIT 1 FOR UPDATE SKIP LOCKED) SELECT * FROM j",
	`SELECT "intoxicated", "update" FROM "points" WHERE "into" = 'insert into x'`,
	"VALUES (1, 'a'), (2, 'b')",
	"TABLE pgbench_branches",
	"SELECT $1::text AS name",
	"SELECT NOW()",
	"SELECT pg_advisory_xact_lock($1)",
	// Sequelize
	`SELECT "id", "name", "createdAt" FROM "Users" AS "User" WHERE "User"."id" = 1;`,
	`INSERT INTO "Users" ("id","name","createdAt","updatedAt") VALUES (DEFAULT,$1,$2,$3) RETURNING "id","name","createdAt","updatedAt";`,
	`UPDATE "Users" SET "name"=$1,"updatedAt"=$2 WHERE "id" = $3`,
	`DELETE FROM "Users" WHERE "id" = 1`,
	// TypeORM
	`SELECT "User"."id" AS "User_id", "User"."name" AS "User_name" FROM "user" "User" WHERE ("User"."id" = $1) LIMIT 1`,
	`INSERT INTO "user"("name", "age") VALUES ($1, $2) RETURNING "id", "createdAt"`,
	`UPDATE "user" SET "name" = $1, "updatedAt" = CURRENT_TIMESTAMP WHERE "id" IN ($2)`,
	`DELETE FROM "user" WHERE "id" IN ($1, $2)`,
	"START TRANSACTION",
	"SAVEPOINT typeorm_1",
	"RELEASE SAVEPOINT typeorm_1",
	"ROLLBACK TO SAVEPOINT typeorm_1",
	// Prisma
	`SELECT "public"."User"."id", "public"."User"."email" FROM "public"."User" WHERE ("public"."User"."email" = $1 AND 1=1) LIMIT $2 OFFSET $3`,
	`UPDATE "public"."User" SET "name" = $1 WHERE ("public"."User"."id" = $2 AND 1=1) RETURNING "public"."User"."id", "public"."User"."name"`,
	`DELETE FROM "public"."Post" WHERE ("public"."Post"."id" = $1 AND 1=1)`,
	`INSERT INTO "public"."User" ("email","name") VALUES ($1,$2) ON CONFLICT ("email") DO UPDATE SET "name" = $3 WHERE (("public"."User"."email" = $4 AND 1=1)) RETURNING "public"."User"."id"`,
	"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
	// node-postgres, pgjdbc
	"INSERT INTO t (a, b) VALUES ($1, $2) RETURNING *",
	"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, now()) ON CONFLICT DO NOTHING RETURNING tid",
	"UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2 RETURNING abalance",
	"WITH ins AS (INSERT INTO t (a) VALUES ($1) RETURNING id) SELECT id FROM ins",
	"SET application_name = 'PostgreSQL JDBC Driver'",
	"SET extra_float_digits = 3",
	"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED",
	"SHOW TRANSACTION ISOLATION LEVEL",
	"SHOW search_path",
	"SET LOCAL statement_timeout = '5s'",
	"SAVEPOINT PGJDBC_AUTOSAVE",
	"RELEASE SAVEPOINT PGJDBC_AUTOSAVE",
	"BEGIN", "BEGIN READ ONLY", "COMMIT", "ROLLBACK", "END",
	"DISCARD ALL", "DEALLOCATE ALL", "LISTEN jobs", "NOTIFY jobs, 'x'",
	"COPY pgbench_history FROM STDIN",
	"COPY (SELECT * FROM pgbench_accounts WHERE aid < 100) TO STDOUT WITH (FORMAT csv)",
	// multi-statement strings
	"BEGIN; UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 1; SELECT abalance FROM pgbench_accounts WHERE aid = 1; COMMIT;",
	"BEGIN; SELECT * FROM pgbench_accounts WHERE aid = 1 FOR UPDATE; INSERT INTO pgbench_history (aid) VALUES (1) ON CONFLICT DO NOTHING RETURNING aid; COMMIT",
}

// parsedTraffic is DML that the large-dml rule legitimately parses: it may
// touch many rows. It must still never ask the catalog about an empty name.
var parsedTraffic = []string{
	"WITH d AS (DELETE FROM big RETURNING *) SELECT count(*) FROM d",
	"WITH u AS (UPDATE big SET a = 1 WHERE b < 10 RETURNING *) SELECT * FROM u",
	"UPDATE big SET a = 1",
	"DELETE FROM big WHERE created_at < now() - interval '1 year'",
	"UPDATE big SET a = 1 WHERE (id = 5 AND b) OR c",
}

// recordingCatalog answers every question (tables are large, nothing is
// partitioned) and records the questions.
type recordingCatalog struct {
	mu    sync.Mutex
	asked []string
}

func (c *recordingCatalog) record(q ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, strings.Join(q, " "))
}

func (c *recordingCatalog) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.asked
	c.asked = nil
	return a
}

func (c *recordingCatalog) TableSize(_ context.Context, t string) (TableSize, bool) {
	c.record("TableSize", t)
	return TableSize{Rows: 10_000_000, Bytes: 10 << 30}, true
}

func (c *recordingCatalog) HasValidatedNotNullCheck(_ context.Context, t, col string) (bool, bool) {
	c.record("HasValidatedNotNullCheck", t, col)
	return false, true
}

func (c *recordingCatalog) IsPartitioned(_ context.Context, t string) (bool, bool) {
	c.record("IsPartitioned", t)
	return false, true
}

func (c *recordingCatalog) Index(_ context.Context, n string) (bool, bool, bool) {
	c.record("Index", n)
	return true, true, true
}

func (c *recordingCatalog) HasUniqueIndex(_ context.Context, t string) (bool, bool) {
	c.record("HasUniqueIndex", t)
	return true, true
}

func (c *recordingCatalog) FunctionVolatility(_ context.Context, n string) (Volatility, bool) {
	c.record("FunctionVolatility", n)
	return VolatilityVolatile, true
}

func (c *recordingCatalog) EstimateRows(_ context.Context, sql string) (int64, bool) {
	c.record("EstimateRows", sql)
	return 1_000_000, true
}

func (c *recordingCatalog) ColumnType(_ context.Context, t, col string) (string, bool) {
	c.record("ColumnType", t, col)
	return "integer", true
}

func (c *recordingCatalog) MatViewPopulated(_ context.Context, v string) (bool, bool) {
	c.record("MatViewPopulated", v)
	return true, true
}

func (c *recordingCatalog) PartitionKey(_ context.Context, t string) (string, []string, bool) {
	c.record("PartitionKey", t)
	return "range", []string{"created_at"}, true
}

func (c *recordingCatalog) HasValidatedCheckOn(_ context.Context, t string, cols []string) (bool, bool) {
	c.record(append([]string{"HasValidatedCheckOn", t}, cols...)...)
	return false, true
}

// trafficEngine is the shipped policy with a recording catalog; empty
// collects the catalog questions rules asked about an empty name.
func trafficEngine(t *testing.T) (e *Engine, cat *recordingCatalog, empty *[]string) {
	t.Helper()
	e, err := NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var asked []string
	e.onEmptyName = func(method string) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, method)
	}
	return e, &recordingCatalog{}, &asked
}

// TestAppTrafficCostsNothing: application traffic passes the fast path,
// is never parsed (Engine.parses) and never asks the catalog, inside a
// transaction block or not; what Plain passes, the parsing twin allows.
func TestAppTrafficCostsNothing(t *testing.T) {
	e, cat, empty := trafficEngine(t)
	ctx := context.Background()
	for _, q := range appTraffic {
		n, plain := e.Plain(q)
		if !plain || n != len(sqltext.Split(q)) {
			t.Errorf("Plain(%q) = %d, %v; want %d, true", q, n, plain, len(sqltext.Split(q)))
		}
		before := e.parses.Load()
		for _, inTx := range []bool{false, true} {
			ds, err := e.DecideQuery(ctx, q, &Context{Alone: true, InTransaction: inTx, Catalog: cat})
			if err != nil {
				t.Fatal(err)
			}
			checkPlain(t, e, q, ds)
		}
		if p := e.parses.Load() - before; p != 0 {
			t.Errorf("DecideQuery parsed %d statements of %q", p, q)
		}
		if asked := cat.take(); len(asked) > 0 {
			t.Errorf("%q asked the catalog %q", q, asked)
		}
		if a := testing.AllocsPerRun(20, func() { e.Plain(q) }); a != 0 {
			t.Errorf("Plain(%q) allocates %.0f times", q, a)
		}
		// In a transaction block the proxy's fast path also asks whether
		// the statement calls user code (it is judged then).
		if RunsUserCode(q) {
			t.Errorf("RunsUserCode(%q): application traffic would be judged in a transaction block", q)
		}
		if a := testing.AllocsPerRun(20, func() { RunsUserCode(q) }); a != 0 {
			t.Errorf("RunsUserCode(%q) allocates %.0f times", q, a)
		}
	}
	if len(*empty) > 0 {
		t.Errorf("catalog questions about an empty name: %q", *empty)
	}
}

// TestNotAppTraffic: statements that look like traffic but write a table
// or change more than a few rows are parsed, never passed.
func TestNotAppTraffic(t *testing.T) {
	e, _, _ := trafficEngine(t)
	for _, q := range append([]string{
		"WITH x AS (SELECT 1) SELECT * INTO t2 FROM x",
		"WITH x AS (INSERT INTO a VALUES (1) RETURNING *) SELECT * INTO t2 FROM x",
		"SELECT * INTO TEMP t2 FROM t",
		"SELECT 1; WITH d AS (DELETE FROM big RETURNING *) SELECT 1",
		"WITH x AS (SELECT 1) MERGE INTO t USING x ON true WHEN MATCHED THEN DELETE",
		"WITH x AS (SELECT 1) UPDATE t SET a = 1",
		"WITH x AS (SELECT 1) (DELETE FROM t)",
	}, parsedTraffic...) {
		if _, plain := e.Plain(q); plain {
			t.Errorf("Plain(%q) passes", q)
		}
	}
	for _, q := range []string{"WITH x AS (SELECT 1) SELECT * INTO t2 FROM x", "SELECT * INTO TEMP t2 FROM t"} {
		ds, _ := e.DecideQuery(context.Background(), q, &Context{Alone: true})
		if len(ds) != 1 || !ds[0].Decision.DDL {
			t.Errorf("%q: want one DDL statement, got %+v", q, ds)
		}
	}
}

// TestCatalogQuestions runs every fixture statement and the traffic above
// with a catalog: no rule may ask about an empty name, and no question is
// asked twice for one statement.
func TestCatalogQuestions(t *testing.T) {
	e, cat, empty := trafficEngine(t)
	ctx := context.Background()
	var queries []string
	for _, rule := range Rules() {
		for _, f := range []string{"ok.sql", "bad.sql"} {
			for _, s := range readFixture(t, filepath.Join("testdata", rule.ID, f)) {
				queries = append(queries, s.Text)
			}
		}
	}
	queries = append(append(append(queries, appTraffic...), parsedTraffic...), fuzzSeeds...)
	asked := 0
	for _, q := range queries {
		for _, s := range sqltext.Split(q) {
			for _, inTx := range []bool{false, true} {
				e.Decide(ctx, s, &Context{Alone: true, InTransaction: inTx, Catalog: cat})
				seen := map[string]bool{}
				for _, a := range cat.take() {
					asked++
					if seen[a] {
						t.Errorf("%q asked %q twice", s.Text, a)
					}
					seen[a] = true
				}
			}
		}
	}
	if asked == 0 {
		t.Error("no statement asked the catalog anything; the check above proved nothing")
	}
	if len(*empty) > 0 {
		t.Errorf("catalog questions about an empty name: %q", *empty)
	}
}

// TestParsedTrafficIsCached: a statement that must be parsed is parsed
// once, then served from the parse cache.
func TestParsedTrafficIsCached(t *testing.T) {
	e, err := NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range parsedTraffic {
		ds, _ := e.DecideQuery(context.Background(), q, &Context{Alone: true})
		if len(ds) != 1 {
			t.Fatalf("%q: %d statements", q, len(ds))
		}
		if e.cache.len() == 0 {
			t.Fatalf("%q was parsed but not cached", q)
		}
	}
	n := e.cache.len()
	for _, q := range parsedTraffic {
		e.DecideQuery(context.Background(), q, &Context{Alone: true})
	}
	if e.cache.len() != n || n != len(parsedTraffic) {
		t.Errorf("cache holds %d entries after the second round, %d after the first; want %d", e.cache.len(), n, len(parsedTraffic))
	}
}

func BenchmarkAppTraffic(b *testing.B) {
	e, err := NewEngine(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, sql string }{
		{"cte", "WITH r AS (SELECT aid, abalance FROM pgbench_accounts WHERE aid = $1) SELECT * FROM r"},
		{"join_group_by", "SELECT b.bid, count(*), sum(a.abalance) FROM pgbench_accounts a JOIN pgbench_branches b ON b.bid = a.bid WHERE a.aid BETWEEN $1 AND $2 GROUP BY b.bid ORDER BY 2 DESC"},
		{"for_update_skip_locked", `SELECT * FROM "Job" WHERE "status" = $1 ORDER BY "id" LIMIT 10 FOR UPDATE SKIP LOCKED`},
		{"prisma_update", `UPDATE "public"."User" SET "name" = $1 WHERE ("public"."User"."id" = $2 AND 1=1) RETURNING "public"."User"."id", "public"."User"."name"`},
		{"on_conflict_returning", "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, now()) ON CONFLICT DO NOTHING RETURNING tid"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx, sc, stmt := context.Background(), &Context{Alone: true}, sqltext.Statement{Text: bc.sql}
			for b.Loop() {
				if _, plain := e.Plain(bc.sql); !plain {
					e.Decide(ctx, stmt, sc)
				}
			}
		})
	}
}

// len is the number of cached statements.
func (c *parseCache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.Lock()
		n += c.shards[i].lru.Len()
		c.shards[i].mu.Unlock()
	}
	return n
}

// BenchmarkRunsUserCode is what the fast path pays per statement for the
// trigger of user code (CallsUserFunction), on application traffic.
func BenchmarkRunsUserCode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		for _, q := range appTraffic {
			RunsUserCode(q)
		}
	}
}

// BenchmarkPlainAppTraffic is the fast path itself over the same traffic.
func BenchmarkPlainAppTraffic(b *testing.B) {
	e, err := NewEngine(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, q := range appTraffic {
			e.Plain(q)
		}
	}
}
