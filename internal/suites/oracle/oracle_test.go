package oracle

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgguard/pgguard/internal/testkit/guardtest"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

var guard *guardtest.Env

func TestMain(m *testing.M) {
	flag.Parse()
	guardtest.RaiseParallel(4)
	os.Exit(run(m))
}

func run(m *testing.M) int {
	env, err := guardtest.Start("oracle tests", "oracle", "oracle_template", pgtest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if env == nil {
		return m.Run() // every test skips through Need
	}
	defer env.Close()
	guard = env
	return m.Run()
}

var dbSeq atomic.Int64

// database gives a case its own copy of the template (big: 300,000 rows;
// small: 10), dropped when the test passes.
func database(t *testing.T) string {
	t.Helper()
	guard.Need(t)
	name := guard.Clone(t, fmt.Sprintf("oracle_%d", dbSeq.Add(1)))
	t.Cleanup(func() {
		if !t.Failed() {
			guard.PG.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		}
	})
	return name
}

func connect(t *testing.T, addr, db string) *pgx.Conn {
	t.Helper()
	// The simple protocol: each attempt is sent as written, several
	// statements in one Query where the case has them.
	return connectMode(t, addr, db, pgx.QueryExecModeSimpleProtocol)
}

// connectMode connects with the given default query execution mode.
func connectMode(t *testing.T, addr, db string, mode pgx.QueryExecMode) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgtest.SuperUser, pgtest.Password, addr, db)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = mode
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// through runs the attempt's statements through pgguard, one Query each,
// and returns the errors (nil where the statement succeeded).
func through(t *testing.T, db string, stmts []string) []error {
	t.Helper()
	conn := connect(t, guard.ProxyAddr, db)
	errs := make([]error, len(stmts))
	for i, s := range stmts {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		_, errs[i] = conn.Exec(ctx, s)
		cancel()
	}
	return errs
}

// direct asks the server itself one value.
func direct(t *testing.T, db, query string) string {
	t.Helper()
	conn := connect(t, guard.PG.Addr(), db)
	var v string
	if err := conn.QueryRow(context.Background(), query).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

const (
	accountType = "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'account'"
	maxAccount  = "SELECT max(account)::text FROM big"
	hasTier     = "SELECT count(*)::text FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'tier' AND NOT attisdropped"
)

// TestBodiesCannotRewriteBig: ALTER TABLE big ALTER COLUMN account TYPE
// bigint rewrites 300,000 rows under ACCESS EXCLUSIVE. Whatever body it
// hides in, the column must still be integer afterwards.
func TestBodiesCannotRewriteBig(t *testing.T) {
	const alter = "ALTER TABLE big ALTER COLUMN account TYPE bigint"
	for name, stmts := range map[string][]string{
		"DO in DO":       {`DO $$ BEGIN DO $i$ BEGIN ` + alter + `; END $i$; END $$`},
		"DO in DO in DO": {`DO $a$ BEGIN DO $b$ BEGIN DO $c$ BEGIN ` + alter + `; END $c$; END $b$; END $a$`},
		"SQL function, SELECT": {`CREATE FUNCTION widen() RETURNS void LANGUAGE sql AS '` + alter + `'`,
			"SELECT widen()"},
		"SQL procedure, CALL": {`CREATE PROCEDURE widen() LANGUAGE sql AS $$ ` + alter + ` $$`, "CALL widen()"},
		"PL/pgSQL function with a DO in an IF": {`CREATE FUNCTION widen() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN IF true THEN DO $d$ BEGIN ` + alter + `; END $d$; END IF; END $f$`,
			"SELECT widen()"},
		"PL/pgSQL procedure that CALLs a SQL one": {`CREATE PROCEDURE inner_p() LANGUAGE sql AS $$ ` + alter + ` $$`,
			`CREATE PROCEDURE outer_p() LANGUAGE plpgsql AS $$ BEGIN CALL inner_p(); END $$`, "CALL outer_p()"},
		"trigger": {`CREATE FUNCTION widen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ` + alter + `; RETURN NEW; END $$`,
			"CREATE TRIGGER widen AFTER INSERT ON small FOR EACH ROW EXECUTE FUNCTION widen()",
			"INSERT INTO small VALUES (100, 'x')"},
		"event trigger": {`CREATE FUNCTION widen() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN ` + alter + `; END $$`,
			"CREATE EVENT TRIGGER widen ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION widen()",
			"CREATE TABLE fires (id int)"},
		"EXECUTE of a literal": {`DO $$ BEGIN EXECUTE '` + alter + `'; END $$`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := database(t)
			errs := through(t, db, stmts)
			serverHolds(t, db, errs, accountType, "integer", "pgguard: ")
		})
	}
}

// TestBackfillsAreRefused: an UPDATE of more than large_dml.max_rows rows
// (big has 300,000) must not change them, however it is sent.
func TestBackfillsAreRefused(t *testing.T) {
	const backfill = "UPDATE big SET account = account + 1000000 WHERE note IS NOT NULL"
	for name, stmts := range map[string][]string{
		"autocommit":        {backfill},
		"transaction block": {"BEGIN", backfill, "COMMIT"},
		"after a failed EXPLAIN in the block": {"BEGIN", "SELECT 1", "UPDATE big SET account = no_such_column WHERE note IS NOT NULL",
			"ROLLBACK", "BEGIN", backfill, "COMMIT"},
		"one Query with SET":  {"SET application_name = 'x'; " + backfill},
		"EXPLAIN ANALYZE":     {"EXPLAIN ANALYZE " + backfill},
		"PREPARE and EXECUTE": {"PREPARE backfill AS " + backfill, "EXECUTE backfill"},
		"WITH query":          {"WITH u AS (" + backfill + " RETURNING 1) SELECT count(*) FROM u"},
		"in a DO block":       {"DO $$ BEGIN " + backfill + "; END $$"},
		"SQL function":        {"CREATE FUNCTION fill() RETURNS void LANGUAGE sql AS '" + backfill + "'", "SELECT fill()"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := database(t)
			errs := through(t, db, stmts)
			serverHolds(t, db, errs, maxAccount, "999", "pgguard: large-dml")
		})
	}
}

// TestBackfillsAreRefusedPipelined: the verdict on the backfill must not
// depend on how the client batches it. Sent behind statements whose
// answers are still to come (a libpq-style pipeline, two Queries in one
// write), behind BEGIN in its own batch (pgjdbc with autocommit off) or
// prepared together with another statement (a pgx Batch), it is refused
// as it is alone: pgguard asks the planner all the same.
func TestBackfillsAreRefusedPipelined(t *testing.T) {
	const backfill = "UPDATE big SET account = account + 1000000 WHERE note IS NOT NULL"
	for name, send := range map[string]func(t *testing.T, db string) []error{
		"libpq pipeline, a sync point each": func(t *testing.T, db string) []error {
			return pipeline(t, db, [][]string{{"SELECT pg_sleep(0.2)"}, {backfill}})
		},
		"libpq pipeline, after BEGIN in the same batch": func(t *testing.T, db string) []error {
			return pipeline(t, db, [][]string{{"BEGIN", backfill}, {"COMMIT"}})
		},
		"libpq pipeline, busy, then BEGIN in the same batch": func(t *testing.T, db string) []error {
			return pipeline(t, db, [][]string{{"SELECT pg_sleep(0.2)"}, {"BEGIN", backfill}, {"COMMIT"}})
		},
		"two Queries in one write": func(t *testing.T, db string) []error {
			return queries(t, db, "SELECT pg_sleep(0.2)", backfill)
		},
		"pgx Batch": func(t *testing.T, db string) []error {
			// The statements are prepared in one batch (Parse, Describe,
			// Parse, Describe, Sync), then run in another.
			conn := connectMode(t, guard.ProxyAddr, db, pgx.QueryExecModeCacheStatement)
			b := &pgx.Batch{}
			b.Queue("SELECT count(*) FROM small")
			b.Queue(backfill)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			return []error{conn.SendBatch(ctx, b).Close()}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := database(t)
			errs := send(t, db)
			serverHolds(t, db, errs, maxAccount, "999", "pgguard: large-dml")
		})
	}
}

// pipeline sends groups of statements through pgguard in one write, as
// libpq's pipeline mode does: each statement Parse, Bind, Describe and
// Execute, each group ended by a Sync. It returns the errors met.
func pipeline(t *testing.T, db string, groups [][]string) []error {
	t.Helper()
	conn := connect(t, guard.ProxyAddr, db)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := conn.PgConn().StartPipeline(ctx)
	for _, g := range groups {
		for _, s := range g {
			p.SendQueryParams(s, nil, nil, nil, nil)
		}
		p.SendPipelineSync()
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	var errs []error
	for syncs := 0; syncs < len(groups); {
		res, err := p.GetResults()
		switch r := res.(type) {
		case *pgconn.ResultReader:
			if _, err := r.Close(); err != nil {
				errs = append(errs, err)
			}
		case *pgconn.PipelineSync:
			syncs++
		case nil:
			if err == nil {
				t.Fatalf("pipeline ended after %d of %d sync points", syncs, len(groups))
			}
			errs = append(errs, err)
		}
	}
	if err := p.Close(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// queries sends simple Queries through pgguard in one write and returns
// the errors met.
func queries(t *testing.T, db string, sqls ...string) []error {
	t.Helper()
	conn := connect(t, guard.ProxyAddr, db)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pc := conn.PgConn()
	for _, s := range sqls {
		pc.Frontend().Send(&pgproto3.Query{String: s})
	}
	if err := pc.Frontend().Flush(); err != nil {
		t.Fatal(err)
	}
	var errs []error
	for ready := 0; ready < len(sqls); {
		msg, err := pc.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			errs = append(errs, pgconn.ErrorResponseToPgError(m))
		case *pgproto3.ReadyForQuery:
			ready++
		}
	}
	return errs
}

// TestDataChangeUnderAccessExclusive: the migration that adds a column and
// fills it in the same transaction holds ACCESS EXCLUSIVE on big for the
// whole UPDATE. It is refused whatever the UPDATE's size, and the
// transaction is rolled back: the column is not there afterwards.
func TestDataChangeUnderAccessExclusive(t *testing.T) {
	for name, stmts := range map[string][]string{
		"transaction block": {"BEGIN", "ALTER TABLE big ADD COLUMN tier text", "UPDATE big SET tier = 'basic' WHERE id = 1", "COMMIT"},
		"LOCK then UPDATE":  {"BEGIN", "LOCK TABLE big IN ACCESS EXCLUSIVE MODE", "ALTER TABLE big ADD COLUMN tier text", "UPDATE big SET tier = 'basic' WHERE id < 50", "COMMIT"},
		"one Query":         {"ALTER TABLE big ADD COLUMN tier text; UPDATE big SET tier = 'basic'"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := database(t)
			errs := through(t, db, stmts)
			serverHolds(t, db, errs, hasTier, "0", "pgguard: large-dml")
		})
	}
}

// serverHolds is the verdict of every case: asked directly, the server
// answers query with want (the unsafe change did not happen), and one of
// the attempt's errors is pgguard's refusal starting with refusal.
func serverHolds(t *testing.T, db string, errs []error, query, want, refusal string) {
	t.Helper()
	if got := direct(t, db, query); got != want {
		t.Fatalf("%s gives %s after the attempt, want %s (errors %v): the change happened", query, got, want, errs)
	}
	if !refusedBy(errs, refusal) {
		t.Fatalf("no statement was refused with %q: %v", refusal, errs)
	}
}

func refusedBy(errs []error, prefix string) bool {
	for _, err := range errs {
		if err != nil && strings.Contains(err.Error(), prefix) {
			return true
		}
	}
	return false
}
