package proxy

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgguard/pgguard/internal/observe"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// Red team (issue 21): statements and holders the look before queueing
// misses. Each case: a session holds a lock on a relation the migration's
// statement locks (idle in its transaction for 2.5s), the application
// queries that relation in a loop, the migration sends its statement
// through pgguard. The promise: the statement waits outside the queue
// (one wait, outcome clear) and no application statement takes 500 ms.
type rtLookCase struct {
	name      string
	setup     []string // run first, in database guard, as superuser
	hold      string   // the holder's statement(s) inside its transaction
	app       string   // the application's statement, $1 an int
	migration []string // each sent as one simple-protocol Query
	// heldHostage: the migration's block already holds a lock the
	// application waits for; a refusal (lock-queue) is as good as a wait.
	heldHostage bool
	// options of the migration's connection (application_name=knex
	// makes it a migration's session).
	options string
}

func rtLookBeforeQueueing(t *testing.T, c rtLookCase) { rtLookWith(t, c, "", false) }

// rtLookWith plays c behind pgguard with the lock queue's test settings
// and settings added; appGone: the migration drops what the application
// queries, whose errors then are not counted, only how long its
// statements take.
func rtLookWith(t *testing.T, c rtLookCase, settings string, appGone bool) {
	_, addr, obs := guardProxy(t, "lock_queue: {deadline: 10s, threshold: 300ms}\n"+settings, nil)
	ctx := context.Background()
	if err := pgExec("guard", c.setup...); err != nil {
		t.Fatal(err)
	}
	holder := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=nightly-report")
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, c.hold)
	defer commitAfter(holder, 2500*time.Millisecond)()
	time.Sleep(400 * time.Millisecond) // the holder is past the threshold
	slowest, appErr, stop := rtAppLoop(t, func() *pgx.Conn { c, _ := guardConn(t, addr, pgtest.SuperUser, ""); return c }, c.app)
	migration, _ := guardConn(t, addr, pgtest.SuperUser, c.options)
	start := time.Now()
	var err error
	for _, q := range c.migration {
		if _, err = migration.Exec(ctx, q); err != nil {
			break
		}
	}
	took := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	stop()
	obs.mu.Lock()
	waits := slices.Clone(obs.queueWaits)
	obs.mu.Unlock()
	if c.heldHostage {
		if err != nil {
			wantRefusal(t, err, "lock-queue")
		}
		if *appErr != nil || *slowest >= 500*time.Millisecond {
			t.Errorf("application statements: slowest %v, error %v; want none at 500ms or more (the migration took %v, err %v, waits outside the queue %v)", *slowest, *appErr, took, err, waits)
		}
		return
	}
	if err != nil {
		t.Fatalf("the migration after %v: %v, want it to run once the holder is gone", took, err)
	}
	if appGone {
		*appErr = nil
	}
	if *appErr != nil || *slowest >= 500*time.Millisecond {
		t.Errorf("application statements: slowest %v, error %v; want none at 500ms or more (the migration took %v, waits outside the queue %v)", *slowest, *appErr, took, waits)
	}
	if len(waits) != 1 || waits[0] != observe.LockQueueClear {
		t.Errorf("waits outside the queue %v, want one that ended clear (the migration took %v)", waits, took)
	}
}

// rtAppLoop runs app through pgguard on 4 connections until stop is
// called; stop waits for them and leaves the slowest and the first error.
func rtAppLoop(t *testing.T, dial func() *pgx.Conn, app string) (slowest *time.Duration, appErr *error, stop func()) {
	ctx := context.Background()
	ch := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	slowest, appErr = new(time.Duration), new(error)
	for i := 0; i < 4; i++ {
		app1 := dial()
		wg.Add(1)
		go func(i int, conn *pgx.Conn) {
			defer wg.Done()
			for {
				select {
				case <-ch:
					return
				default:
				}
				start := time.Now()
				rows, err := conn.Query(ctx, app, 1+i)
				if err == nil {
					for rows.Next() {
					}
					rows.Close()
					err = rows.Err()
				}
				mu.Lock()
				if d := time.Since(start); d > *slowest {
					*slowest = d
				}
				if err != nil && *appErr == nil {
					*appErr = err
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}(i, app1)
	}
	var once sync.Once
	return slowest, appErr, func() { once.Do(func() { close(ch); wg.Wait() }) }
}

func TestRedteamLookMissesStatements(t *testing.T) {
	const tbl = "DROP TABLE IF EXISTS rt_t CASCADE; DROP VIEW IF EXISTS rt_v; DROP SEQUENCE IF EXISTS rt_s; DROP SCHEMA IF EXISTS rt_s2 CASCADE;" +
		" CREATE TABLE rt_t (id int PRIMARY KEY, v text); INSERT INTO rt_t SELECT g, 'x' FROM generate_series(1, 100) g; ANALYZE rt_t"
	t.Cleanup(func() {
		pgExec("guard", "DROP TABLE IF EXISTS rt_t CASCADE; DROP VIEW IF EXISTS rt_v; DROP SEQUENCE IF EXISTS rt_s; DROP SCHEMA IF EXISTS rt_s2 CASCADE")
	})
	for _, c := range []rtLookCase{
		// DROP TRIGGER ... ON t and DROP POLICY ... ON t take ACCESS
		// EXCLUSIVE on t (PostgreSQL 15's RemoveTriggerById,
		// RemovePolicyById), and name it; pgguard gave them lock_timeout
		// but did not look.
		{name: "DROP TRIGGER ON t, a read left idle", setup: []string{tbl,
			"CREATE OR REPLACE FUNCTION rt_f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
			"CREATE TRIGGER rt_tr BEFORE UPDATE ON rt_t FOR EACH ROW EXECUTE FUNCTION rt_f()"},
			hold: "SELECT count(*) FROM rt_t", app: "SELECT v FROM rt_t WHERE id = $1", migration: []string{"DROP TRIGGER rt_tr ON rt_t"}},
		{name: "DROP POLICY ON t, a read left idle", setup: []string{tbl, "CREATE POLICY rt_p ON rt_t USING (true)"},
			hold: "SELECT count(*) FROM rt_t", app: "SELECT v FROM rt_t WHERE id = $1", migration: []string{"DROP POLICY rt_p ON rt_t"}},
		{name: "DROP RULE ON t, a read left idle", setup: []string{tbl, "CREATE RULE rt_r AS ON DELETE TO rt_t DO ALSO NOTHING"},
			hold: "SELECT count(*) FROM rt_t", app: "SELECT v FROM rt_t WHERE id = $1", migration: []string{"DROP RULE rt_r ON rt_t"}},
		// CREATE OR REPLACE VIEW takes ACCESS EXCLUSIVE on the view it
		// replaces: pgguard sees no lock at all (no lock_timeout either),
		// so it waits for the reader with none, and every read of the
		// view behind it.
		{name: "CREATE OR REPLACE VIEW, a read of the view left idle", setup: []string{tbl, "CREATE VIEW rt_v AS SELECT id, v FROM rt_t"},
			hold: "SELECT count(*) FROM rt_v", app: "SELECT v FROM rt_v WHERE id = $1",
			migration: []string{"CREATE OR REPLACE VIEW rt_v AS SELECT id, v, 1 AS one FROM rt_t"}},
		// ALTER SEQUENCE takes SHARE ROW EXCLUSIVE on the sequence, which
		// conflicts with the ROW EXCLUSIVE every nextval() takes until
		// its transaction ends: a long transaction that inserted holds
		// it, and every nextval() (every INSERT) queues behind the ALTER.
		{name: "ALTER SEQUENCE, a nextval left idle", setup: []string{tbl, "CREATE SEQUENCE rt_s"},
			hold: "SELECT nextval('rt_s')", app: "SELECT nextval('rt_s') + $1",
			migration: []string{"ALTER SEQUENCE rt_s INCREMENT BY 2"}},
		// The schema is set earlier in the same Query: the look resolves
		// the table's name with the session's search_path before the
		// Query is sent, finds no such table, and sends the ALTER.
		{name: "ALTER TABLE after SET search_path in the same Query, a read left idle", setup: []string{tbl,
			"CREATE SCHEMA rt_s2", "CREATE TABLE rt_s2.rt_t2 (id int PRIMARY KEY, v text)", "INSERT INTO rt_s2.rt_t2 SELECT g, 'x' FROM generate_series(1, 100) g"},
			hold: "SELECT count(*) FROM rt_s2.rt_t2", app: "SELECT v FROM rt_s2.rt_t2 WHERE id = $1",
			migration: []string{"SET search_path = rt_s2, public; ALTER TABLE rt_t2 ADD COLUMN note text"}},
		// A DO block's ALTER TABLE names its table in the body, which
		// pgguard reads (it gives the block lock_timeout) but does not
		// look for.
		{name: "ALTER TABLE in a DO block, a read left idle", setup: []string{tbl},
			hold: "SELECT count(*) FROM rt_t", app: "SELECT v FROM rt_t WHERE id = $1",
			migration: []string{"DO $$ BEGIN ALTER TABLE rt_t ADD COLUMN note text; END $$"}},
		// ALTER TABLE on a partitioned table takes ACCESS EXCLUSIVE on
		// each partition too; the holder reads one partition only.
		{name: "ALTER TABLE of a partitioned table, a read of a partition left idle", setup: []string{tbl,
			"CREATE TABLE rt_pt (id int, v text) PARTITION BY RANGE (id)", "CREATE TABLE rt_pt1 PARTITION OF rt_pt FOR VALUES FROM (0) TO (1000)",
			"INSERT INTO rt_pt SELECT g, 'x' FROM generate_series(1, 100) g"},
			hold: "SELECT count(*) FROM rt_pt1", app: "SELECT v FROM rt_pt WHERE id = $1",
			migration: []string{"ALTER TABLE rt_pt ADD COLUMN note text"},
		},
		// The migration's block holds ACCESS EXCLUSIVE on rt_a when its
		// next statement waits outside the queue for rt_t's reader: the
		// wait keeps rt_a locked, and the application's reads of rt_a
		// wait for all of it (up to lock_queue.deadline), where
		// lock_timeout alone would have ended the block after 3s.
		{name: "second ALTER of a block waits outside the queue holding the first table", setup: []string{tbl,
			"DROP TABLE IF EXISTS rt_a", "CREATE TABLE rt_a (id int PRIMARY KEY, v text)", "INSERT INTO rt_a SELECT g, 'x' FROM generate_series(1, 100) g"},
			hold: "SELECT count(*) FROM rt_t", app: "SELECT v FROM rt_a WHERE id = $1",
			migration:   []string{"BEGIN", "ALTER TABLE rt_a ADD COLUMN note text", "ALTER TABLE rt_t ADD COLUMN note text", "COMMIT"},
			heldHostage: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS rt_pt, rt_a") })
			rtLookBeforeQueueing(t, c)
		})
	}
}

// A prepared transaction (PREPARE TRANSACTION) keeps its locks with no
// backend: pg_locks shows them with pid NULL, so a look that joins
// pg_stat_activity on the pid does not see it. The ALTER TABLE joins the
// queue behind it, and the application's reads behind the ALTER. With a
// deadline shorter than the prepared transaction, pgguard must refuse,
// naming it (its gid) and how to end it (there is no backend to
// terminate).
func TestRedteamPreparedTransactionInTheWay(t *testing.T) {
	srv := pgtest.Must(t, pgtest.Options{Settings: map[string]string{"max_prepared_transactions": "10"}})
	if err := srv.Exec("CREATE TABLE rt_px (id int PRIMARY KEY, v text)", "INSERT INTO rt_px SELECT g, 'x' FROM generate_series(1, 100) g"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		rules   string
		refused bool
	}{
		{"waits outside the queue", "lock_queue: {deadline: 10s, threshold: 300ms}\n", false},
		{"refused at the deadline, naming it", "lock_queue: {deadline: 1s, threshold: 300ms}\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, addr, obs := guardProxy(t, c.rules, func(cfg *Config) { cfg.Targets[0].Upstream = srv.Addr() })
			dial := func() *pgx.Conn { return connect(t, dsn(addr, pgtest.SuperUser, "")) }
			holder := connect(t, srv.DSN(pgtest.SuperUser, "postgres"))
			mustExec(t, holder, "BEGIN")
			mustExec(t, holder, "SELECT count(*) FROM rt_px WHERE v <> 'hunter2'")
			mustExec(t, holder, "PREPARE TRANSACTION 'rt_px_gid'")
			done := make(chan struct{})
			go func() {
				defer close(done)
				time.Sleep(2500 * time.Millisecond)
				holder.Exec(ctx, "COMMIT PREPARED 'rt_px_gid'")
			}()
			defer func() { <-done; srv.Exec("ROLLBACK PREPARED 'rt_px_gid'") }()
			time.Sleep(400 * time.Millisecond)
			slowest, appErr, stop := rtAppLoop(t, dial, "SELECT v FROM rt_px WHERE id = $1")
			migration := dial()
			start := time.Now()
			_, err := migration.Exec(ctx, "ALTER TABLE rt_px ADD COLUMN IF NOT EXISTS note text")
			took := time.Since(start)
			time.Sleep(200 * time.Millisecond)
			stop()
			if *appErr != nil || *slowest >= 500*time.Millisecond {
				t.Errorf("application statements: slowest %v, error %v; want none at 500ms or more (the migration took %v, err %v)", *slowest, *appErr, took, err)
			}
			obs.mu.Lock()
			waits := slices.Clone(obs.queueWaits)
			obs.mu.Unlock()
			if c.refused {
				if err == nil {
					t.Fatalf("the ALTER ran after %v (waits %v); want pgguard's refusal naming the prepared transaction", took, waits)
				}
				pe := wantRefusal(t, err, "lock-queue")
				for _, want := range []string{"rt_px_gid", "PREPARED 'rt_px_gid'"} {
					if !strings.Contains(pe.Message+pe.Detail+pe.Hint, want) {
						t.Errorf("refusal %q / %q / %q does not say %q", pe.Message, pe.Detail, pe.Hint, want)
					}
				}
				if strings.Contains(pe.Message+pe.Detail+pe.Hint, "hunter2") {
					t.Errorf("the refusal carries the prepared transaction's literal")
				}
				return
			}
			if err != nil {
				t.Fatalf("the migration after %v: %v", took, err)
			}
			if len(waits) != 1 || waits[0] != observe.LockQueueClear {
				t.Errorf("waits outside the queue %v, want one that ended clear (the migration took %v)", waits, took)
			}
		})
	}
}

// A concurrent build waits for a prepared transaction that wrote the
// table (WaitForLockers waits for prepared transactions too), but the
// NOTICE that names whom the build will wait for reads pg_stat_activity
// only, where a prepared transaction has no row: the client is told
// nothing while its build waits.
func TestRedteamConcurrentBuildNamesPreparedTransaction(t *testing.T) {
	srv := pgtest.Must(t, pgtest.Options{Settings: map[string]string{"max_prepared_transactions": "10"}})
	if err := srv.Exec("CREATE TABLE rt_cx (id int PRIMARY KEY, v text)", "INSERT INTO rt_cx SELECT g, 'x' FROM generate_series(1, 100) g"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, addr, _ := guardProxy(t, "lock_queue: {deadline: 10s, threshold: 300ms}\n", func(cfg *Config) { cfg.Targets[0].Upstream = srv.Addr() })
	holder := connect(t, srv.DSN(pgtest.SuperUser, "postgres"))
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "UPDATE rt_cx SET v = v WHERE id = 1")
	mustExec(t, holder, "PREPARE TRANSACTION 'rt_cx_gid'")
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(2 * time.Second)
		holder.Exec(ctx, "COMMIT PREPARED 'rt_cx_gid'")
	}()
	defer func() { <-done; srv.Exec("ROLLBACK PREPARED 'rt_cx_gid'") }()
	time.Sleep(400 * time.Millisecond)
	cfg, err := pgx.ParseConfig(dsn(addr, pgtest.SuperUser, ""))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var notices []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		notices = append(notices, n.Message+" / "+n.Hint)
		mu.Unlock()
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	start := time.Now()
	if _, err := conn.Exec(ctx, "CREATE INDEX CONCURRENTLY rt_cx_v ON rt_cx (v)"); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	for _, n := range notices {
		if strings.Contains(n, "rt_cx_gid") && strings.Contains(n, "PREPARED 'rt_cx_gid'") {
			return
		}
	}
	t.Errorf("the build waited %v for the prepared transaction rt_cx_gid; notices %q do not name it (and how to end it)", took, notices)
}
