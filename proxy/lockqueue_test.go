package proxy

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgguard/pgguard/internal/observe"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// A migration's statement does not join the lock queue while a session
// that has held a lock on the table for long, one that conflicts with the
// statement's, is in its way: it waits outside the queue, so the
// application's queries on the table go on as before (none takes 500 ms),
// and it runs once that session has ended. With a deadline shorter than
// the holder's transaction it is refused, naming the holder
// (TestLockQueueDeadlineNamesTheHolder).
//
// The long transaction holds a read left idle, a row lock, an open cursor
// (with and without HOLD) or a SHARE lock; the statement is an ALTER TABLE
// (ACCESS EXCLUSIVE), a plain CREATE INDEX of a small table (SHARE, which
// conflicts with the application's ROW EXCLUSIVE), an ADD FOREIGN KEY
// (SHARE ROW EXCLUSIVE on both tables, the holder on the referenced one),
// or a LOCK TABLE inside a transaction block. A holder of a lock that does
// not conflict (a read, before a CREATE INDEX) is not waited for; neither
// is anyone inside a REPEATABLE READ block, where a question of pgguard's
// would take the transaction's snapshot.
func TestLockQueueLookBeforeQueueing(t *testing.T) {
	const update = "UPDATE lq_t SET v = 'app' WHERE id = $1"
	const read = "SELECT v FROM lq_t WHERE id = $1"
	for _, c := range []lookCase{
		{name: "ALTER TABLE, a read left idle", hold: "SELECT count(*) FROM lq_t", app: update, migration: []string{"ALTER TABLE lq_t ADD COLUMN note text"}, waits: true},
		{name: "ALTER TABLE, a row lock", hold: "SELECT id FROM lq_t WHERE id = 50 FOR UPDATE", app: update, migration: []string{"ALTER TABLE lq_t ADD COLUMN note text"}, waits: true},
		{name: "ALTER TABLE, an open cursor", hold: "DECLARE lq_c CURSOR FOR SELECT * FROM lq_t; FETCH 1 FROM lq_c", app: update, migration: []string{"ALTER TABLE lq_t ADD COLUMN note text"}, waits: true},
		{name: "ALTER TABLE, an open cursor WITH HOLD", hold: "DECLARE lq_c CURSOR WITH HOLD FOR SELECT * FROM lq_t; FETCH 1 FROM lq_c", app: update, migration: []string{"ALTER TABLE lq_t ADD COLUMN note text"}, waits: true},
		// The holder's SHARE lock blocks the application's writes by
		// itself, with or without a migration: the application reads.
		{name: "ALTER TABLE, a SHARE lock", hold: "LOCK TABLE lq_t IN SHARE MODE", app: read, migration: []string{"ALTER TABLE lq_t ADD COLUMN note text"}, waits: true},
		{name: "CREATE INDEX, a row lock", hold: "UPDATE lq_t SET v = v WHERE id = 50", app: update, migration: []string{"CREATE INDEX lq_t_v ON lq_t (v)"}, waits: true},
		{name: "CREATE INDEX, a read left idle (no conflict)", hold: "SELECT count(*) FROM lq_t", app: update, migration: []string{"CREATE INDEX lq_t_v ON lq_t (v)"}, waits: false},
		{name: "ADD FOREIGN KEY, a row lock on the referenced table", hold: "UPDATE lq_t SET v = v WHERE id = 50", app: update,
			migration: []string{"ALTER TABLE lq_child ADD FOREIGN KEY (t_id) REFERENCES lq_t"}, waits: true},
		{name: "LOCK TABLE in a transaction block, a row lock", hold: "UPDATE lq_t SET v = v WHERE id = 50", app: update,
			migration: []string{"BEGIN", "LOCK TABLE lq_t IN SHARE ROW EXCLUSIVE MODE", "COMMIT"}, waits: true},
		{name: "ALTER TABLE in a transaction block, a read left idle", hold: "SELECT count(*) FROM lq_t", app: update,
			migration: []string{"BEGIN", "SELECT 1", "ALTER TABLE lq_t ADD COLUMN note text", "COMMIT"}, waits: true},
		// REPEATABLE READ and SERIALIZABLE, once a statement of the block
		// has taken its snapshot: the look reads with it.
		{name: "LOCK TABLE in a REPEATABLE READ block after a read, a row lock", hold: "UPDATE lq_t SET v = v WHERE id = 50", app: update,
			migration: []string{"BEGIN ISOLATION LEVEL REPEATABLE READ", "SELECT count(*) FROM lq_t", "LOCK TABLE lq_t IN SHARE ROW EXCLUSIVE MODE", "COMMIT"}, waits: true},
		{name: "ALTER TABLE in a SERIALIZABLE block after a read, a read left idle", hold: "SELECT count(*) FROM lq_t", app: update,
			migration: []string{"BEGIN ISOLATION LEVEL SERIALIZABLE", "SELECT 1", "ALTER TABLE lq_t ADD COLUMN note text", "COMMIT"}, waits: true},
		// As pgjdbc sends a migration's first statement with autocommit
		// off (Flyway, Liquibase): BEGIN and the DDL in one batch, looked
		// for before the batch is sent.
		{name: "ALTER TABLE behind BEGIN in one extended-protocol batch, a row lock", hold: "SELECT id FROM lq_t WHERE id = 50 FOR UPDATE", app: update,
			migration: []string{"BEGIN", "ALTER TABLE lq_t ADD COLUMN note text", "COMMIT"}, batch: true, waits: true},
		{name: "CREATE INDEX second in a multi-statement Query, a row lock", hold: "UPDATE lq_t SET v = v WHERE id = 50", app: update,
			migration: []string{"SELECT 1; CREATE INDEX lq_t_v ON lq_t (v)"}, waits: true},
		// Tables a statement locks without naming them, which the look
		// finds in the catalog: an index's table, a foreign key's other
		// table.
		// (In a block, where pgguard does not make it CONCURRENTLY.)
		{name: "DROP INDEX in a transaction block, a read left idle", setup: []string{"CREATE INDEX lq_t_v ON lq_t (v)"}, hold: "SELECT count(*) FROM lq_t", app: update,
			migration: []string{"BEGIN", "DROP INDEX lq_t_v", "COMMIT"}, waits: true},
		// A lock on the table alone, none on its index: the look must
		// find the index's table.
		{name: "REINDEX INDEX, a write lock on the table alone", hold: "LOCK TABLE lq_t IN ROW EXCLUSIVE MODE", app: update,
			migration: []string{"REINDEX INDEX lq_t_pkey"}, waits: true},
		{name: "DROP TABLE with a foreign key, a read of the referenced table", setup: []string{"ALTER TABLE lq_child ADD FOREIGN KEY (t_id) REFERENCES lq_t"},
			hold: "SELECT count(*) FROM lq_t", app: update, migration: []string{`/* pgguard:allow drop-table reason="test" */ DROP TABLE lq_child`}, waits: true},
		{name: "DROP CONSTRAINT of a foreign key, a read of the referenced table", setup: []string{"ALTER TABLE lq_child ADD CONSTRAINT lq_child_fk FOREIGN KEY (t_id) REFERENCES lq_t"},
			hold: "SELECT count(*) FROM lq_t", app: update, migration: []string{"ALTER TABLE lq_child DROP CONSTRAINT lq_child_fk"}, waits: true},
	} {
		t.Run(c.name, func(t *testing.T) { lookBeforeQueueing(t, c) })
	}
}

type lookCase struct {
	name, hold, app string
	setup           []string // more of the schema, before the holder
	migration       []string
	batch           bool // the migration's statements in one extended-protocol batch
	waits           bool // whether the migration waits for the holder
}

func lookBeforeQueueing(t *testing.T, c lookCase) {
	// (annotations: a migration's DROP TABLE says it is meant.)
	_, addr, obs := guardProxy(t, "lock_queue: {deadline: 10s, threshold: 300ms}\nannotations: {allowed_roles: ['*']}\n", nil)
	ctx := context.Background()
	if err := pgExec("guard", "DROP TABLE IF EXISTS lq_child, lq_t", "CREATE TABLE lq_t (id int PRIMARY KEY, v text)",
		"INSERT INTO lq_t SELECT g, 'x' FROM generate_series(1, 100) g", "CREATE TABLE lq_child (id int, t_id int)",
		"ANALYZE lq_t, lq_child", "GRANT ALL ON lq_t, lq_child TO PUBLIC"); err != nil {
		t.Fatal(err)
	}
	if err := pgExec("guard", c.setup...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS lq_child, lq_t") })
	holder := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=nightly-report")
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, c.hold)
	defer commitAfter(holder, 2500*time.Millisecond)()
	time.Sleep(400 * time.Millisecond) // the holder is past the threshold

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	var appErr error
	for i := 0; i < 4; i++ {
		app, _ := guardConn(t, addr, pgtest.SuperUser, "")
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				_, err := app.Exec(ctx, c.app, 1+i)
				mu.Lock()
				if d := time.Since(start); d > slowest {
					slowest = d
				}
				if err != nil && appErr == nil {
					appErr = err
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}(i)
	}
	migration, _ := guardConn(t, addr, pgtest.SuperUser, "")
	start := time.Now()
	var err error
	if c.batch {
		b := &pgconn.Batch{}
		for _, q := range c.migration {
			b.ExecParams(q, nil, nil, nil, nil)
		}
		_, err = migration.PgConn().ExecBatch(ctx, b).ReadAll()
	} else {
		for _, q := range c.migration {
			if _, err = migration.Exec(ctx, q); err != nil {
				break
			}
		}
	}
	took := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("the migration after %v: %v, want it to run once the holder is gone", took, err)
	}
	obs.mu.Lock()
	waits := slices.Clone(obs.queueWaits)
	obs.mu.Unlock()
	if !c.waits {
		if len(waits) != 0 || took >= time.Second {
			t.Fatalf("the migration waited (%v, waits %v) for a holder whose lock does not conflict with its own", took, waits)
		}
		return
	}
	if appErr != nil || slowest >= 500*time.Millisecond {
		t.Fatalf("application statements: slowest %v, error %v; want none at 500ms or more while the migration waited", slowest, appErr)
	}
	if took < 1500*time.Millisecond || len(waits) != 1 || waits[0] != observe.LockQueueClear {
		t.Fatalf("the migration ran after %v (waits %v), while the holder's transaction was open", took, waits)
	}
}

func TestLockQueueDeadlineNamesTheHolder(t *testing.T) {
	_, addr, obs := guardProxy(t, "lock_queue: {deadline: 800ms, threshold: 200ms}\n", nil)
	ctx := context.Background()
	if err := pgExec("guard", "DROP TABLE IF EXISTS lq_d", "CREATE TABLE lq_d (id int)", "GRANT ALL ON lq_d TO PUBLIC"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS lq_d") })
	holder := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=nightly-report")
	var pid int
	if err := holder.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "SELECT count(*) FROM lq_d WHERE id <> 42")
	defer holder.Exec(ctx, "ROLLBACK")
	time.Sleep(300 * time.Millisecond)
	migration, _ := guardConn(t, addr, pgtest.SuperUser, "")
	_, err := migration.Exec(ctx, "ALTER TABLE lq_d ADD COLUMN note text")
	pe := wantRefusal(t, err, "lock-queue")
	for _, want := range []string{"pid " + strconv.Itoa(pid), "nightly-report", "idle in transaction", "pg_terminate_backend(" + strconv.Itoa(pid) + ")"} {
		if !strings.Contains(pe.Message+pe.Detail+pe.Hint, want) {
			t.Errorf("refusal %q / %q / %q does not say %q", pe.Message, pe.Detail, pe.Hint, want)
		}
	}
	if strings.Contains(pe.Detail, "42") {
		t.Errorf("the holder's query reached the client with its literal: %q", pe.Detail)
	}
	var n int
	if err := migration.QueryRow(ctx, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'lq_d' AND column_name = 'note'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the refused ALTER ran: %d %v", n, err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.queueWaits) != 1 || obs.queueWaits[0] != "refused" {
		t.Errorf("waits reported %v, want one refused", obs.queueWaits)
	}
	var ev *observe.StatementEvent
	for i := range obs.events {
		if slices.Contains(obs.events[i].RuleIDs, "lock-queue") {
			ev = &obs.events[i]
		}
	}
	if ev == nil || ev.Action != "reject" || ev.LockQueueWait < 500*time.Millisecond || !strings.Contains(ev.LockQueueBlocker, "nightly-report") {
		t.Errorf("the refused statement's event %+v, want rule lock-queue, reject, the wait and the blocker", ev)
	}
}

// A CREATE INDEX that pgguard runs CONCURRENTLY is not started while
// another session builds an index on the same table: two such builds wait
// for each other's transaction, and PostgreSQL cancels one of them as a
// deadlock, leaving its index INVALID. It waits for the other build to end,
// and is refused past lock_queue.deadline, naming that session; the other
// build always completes.
func TestConcurrentBuildWaitsForAnotherOnTheSameTable(t *testing.T) {
	for _, c := range []struct {
		name     string
		rules    string
		refused  bool
		ourIndex string
	}{
		{"waits, then builds", "lock_queue: {deadline: 20s}\n", false, "lq_build_b"},
		{"refused at the deadline", "lock_queue: {deadline: 600ms}\n", true, "lq_build_c"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, addr, _ := guardProxy(t, c.rules, nil)
			ctx := context.Background()
			defer dropIndex(t, "lq_build_a")
			defer dropIndex(t, c.ourIndex)
			// A writer keeps the other build waiting for writers (its first
			// phase) until it commits. A second build started meanwhile
			// waits for the first's lock with a snapshot, which the first
			// then waits for in its last phase: a deadlock.
			holder := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
			mustExec(t, holder, "BEGIN")
			mustExec(t, holder, "UPDATE big SET note = note WHERE id = 1")
			other := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=other-build")
			var otherPid int
			if err := other.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&otherPid); err != nil {
				t.Fatal(err)
			}
			built := make(chan error, 1)
			go func() {
				_, err := other.Exec(ctx, "CREATE INDEX CONCURRENTLY lq_build_a ON big (account, id)")
				built <- err
			}()
			time.Sleep(500 * time.Millisecond) // the other build is waiting for the writer
			wait := commitAfter(holder, 1500*time.Millisecond)
			defer wait()
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			_, err := conn.Exec(ctx, "CREATE INDEX "+c.ourIndex+" ON big (note, id)")
			if c.refused {
				pe := wantRefusal(t, err, "lock-queue")
				if !strings.Contains(pe.Message+pe.Detail, "pid "+strconv.Itoa(otherPid)) || !strings.Contains(pe.Detail, "other-build") {
					t.Errorf("refusal %q / %q does not name the other build's session", pe.Message, pe.Detail)
				}
				if ex, _ := indexValid(t, c.ourIndex); ex {
					t.Error("the refused build left an index")
				}
			} else if err != nil {
				t.Fatalf("our build: %v, want it to wait for the other and then run", err)
			} else if ex, valid := indexValid(t, c.ourIndex); !ex || !valid {
				t.Errorf("our index exists=%v valid=%v", ex, valid)
			}
			if err := <-built; err != nil {
				t.Fatalf("the other session's build: %v, want it never to be the victim", err)
			}
			if ex, valid := indexValid(t, "lq_build_a"); !ex || !valid {
				t.Errorf("the other session's index exists=%v valid=%v", ex, valid)
			}
		})
	}
}

// Before a concurrent index build starts, pgguard finds the older sessions
// it will wait for in its waiting phases (a transaction that writes the
// table; one that holds a snapshot in the database) and says so at once:
// a NOTICE the client gets while the build still waits, naming each
// session's pid, application_name and state (no query), the statement's
// audit event, and pgguard_concurrent_build_waits_total by
// application_name. A session idle in a READ COMMITTED transaction that
// neither wrote the table nor holds a snapshot is not named: the build
// does not wait for it.
func TestConcurrentBuildSaysWhomItWaitsFor(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics := observe.NewMetrics(reg)
	_, addr, obs := guardProxy(t, "lock_queue: {deadline: 10s, threshold: 200ms}\n", func(c *Config) {
		c.Observer = observe.Observers{c.Observer, metrics}
	})
	ctx := context.Background()
	if err := pgExec("guard", "DROP TABLE IF EXISTS lq_cic", "CREATE TABLE lq_cic (id int, v text)",
		"INSERT INTO lq_cic SELECT g, 'x' FROM generate_series(1, 100) g", "GRANT ALL ON lq_cic TO PUBLIC"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS lq_cic") })
	pidOf := func(c *pgx.Conn) string {
		var pid int
		if err := c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return strconv.Itoa(pid)
	}
	// A report with a snapshot (REPEATABLE READ), a writer of the table,
	// and a session idle in a transaction that holds neither.
	report := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=nightly-report")
	writer := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=app-writer")
	idle := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=idle-one")
	reportPid, writerPid, idlePid := pidOf(report), pidOf(writer), pidOf(idle)
	mustExec(t, report, "BEGIN ISOLATION LEVEL REPEATABLE READ")
	mustExec(t, report, "SELECT count(*) FROM pg_class WHERE relname <> 'secret-literal'")
	mustExec(t, writer, "BEGIN")
	mustExec(t, writer, "UPDATE lq_cic SET v = 'y' WHERE id = 7")
	mustExec(t, idle, "BEGIN")
	mustExec(t, idle, "SELECT 1")
	time.Sleep(300 * time.Millisecond) // past the threshold
	commitWriter := commitAfter(writer, 1500*time.Millisecond)
	defer commitWriter()
	commitReport := commitAfter(report, 2000*time.Millisecond)
	defer commitReport()
	defer idle.Exec(ctx, "ROLLBACK")

	cfg, err := pgx.ParseConfig(strings.Replace(dsn(addr, pgtest.SuperUser, ""), "/postgres?", "/guard?", 1))
	if err != nil {
		t.Fatal(err)
	}
	notices := make(chan *pgconn.Notice, 4)
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices <- n }
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	built := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := conn.Exec(ctx, "CREATE INDEX CONCURRENTLY lq_cic_v ON lq_cic (v)")
		built <- err
	}()
	var n *pgconn.Notice
	select {
	case n = <-notices:
	case err := <-built:
		t.Fatalf("the build ended (%v) before any NOTICE", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no NOTICE within 5s")
	}
	if waited := time.Since(start); waited > time.Second {
		t.Errorf("the NOTICE came after %v, want it before the build waits", waited)
	}
	text := n.Message + "\n" + n.Detail + "\n" + n.Hint
	for _, want := range []string{"pid " + reportPid, "nightly-report", "holds a snapshot", "pid " + writerPid, "app-writer", "writes the table", "idle in transaction"} {
		if !strings.Contains(text, want) {
			t.Errorf("NOTICE %q does not say %q", text, want)
		}
	}
	if strings.Contains(text, "pid "+idlePid) || strings.Contains(text, "idle-one") || strings.Contains(text, "secret-literal") {
		t.Errorf("NOTICE %q names a session the build does not wait for, or a literal", text)
	}
	if err := <-built; err != nil {
		t.Fatalf("the build: %v", err)
	}
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("the build took %v: it did not wait for the writer, and the NOTICE was wrong", took)
	}
	obs.mu.Lock()
	var ev *observe.StatementEvent
	for i := range obs.events {
		if len(obs.events[i].BuildWaitsFor) > 0 {
			ev = &obs.events[i]
		}
	}
	obs.mu.Unlock()
	if ev == nil || len(ev.BuildWaitsFor) != 2 || ev.BuildWaitsFor[0].PID != reportPid && ev.BuildWaitsFor[1].PID != reportPid {
		t.Errorf("the build's event names %+v, want the report and the writer", ev)
	}
	for app, want := range map[string]float64{"nightly-report": 1, "app-writer": 1, "idle-one": 0} {
		if got := counterValue(t, reg, "pgguard_concurrent_build_waits_total", "application_name", app); got != want {
			t.Errorf("pgguard_concurrent_build_waits_total{application_name=%q} = %v, want %v", app, got, want)
		}
	}
}

// counterValue is the value of the counter name whose label is value in
// reg; 0 when there is none.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// A retry after a lock_timeout failure looks at the lock queue again, as
// the first try did: a holder too young to be waited for before the first
// try (so the try queued, and failed after lock_timeout) that has grown
// past the threshold since is waited for outside the queue, and the retry
// is sent once it has ended. Without that look the retries queue behind it
// again, each for lock_timeout, and the last one's 55P03 reaches the
// client. Simple Query and an extended-protocol batch alike.
func TestLockQueueLooksAgainBeforeARetry(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(map[bool]string{false: "Query", true: "extended batch"}[batch], func(t *testing.T) {
			_, addr, obs := guardProxy(t, "lock_timeout: 400ms\nlock_timeout_retries: {attempts: 4, initial_backoff: 300ms, max_backoff: 400ms}\n"+
				"lock_queue: {deadline: 10s, threshold: 1s}\n", nil)
			ctx := context.Background()
			if err := pgExec("guard", "DROP TABLE IF EXISTS lq_r", "CREATE TABLE lq_r (id int)", "GRANT ALL ON lq_r TO PUBLIC"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS lq_r") })
			holder := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=nightly-report")
			mustExec(t, holder, "BEGIN")
			mustExec(t, holder, "SELECT count(*) FROM lq_r")
			held := time.Now()
			wait := commitAfter(holder, 3500*time.Millisecond)
			defer wait()
			migration, _ := guardConn(t, addr, pgtest.SuperUser, "")
			var err error
			if batch {
				b := &pgconn.Batch{}
				b.ExecParams("ALTER TABLE lq_r ADD COLUMN note text", nil, nil, nil, nil)
				_, err = migration.PgConn().ExecBatch(ctx, b).ReadAll()
			} else {
				_, err = migration.Exec(ctx, "ALTER TABLE lq_r ADD COLUMN note text")
			}
			took := time.Since(held)
			if err != nil {
				t.Fatalf("the migration failed after %v: %v; want it to run once the holder has ended", took, err)
			}
			obs.mu.Lock()
			waits := slices.Clone(obs.queueWaits)
			obs.mu.Unlock()
			if took < 3500*time.Millisecond || !slices.Contains(waits, observe.LockQueueClear) || obs.retries.Load() == 0 {
				t.Fatalf("the migration ran after %v, waits %v, %d retries; want a retry that waited outside the queue for the holder",
					took, waits, obs.retries.Load())
			}
		})
	}
}

// When the holder is still in the way at lock_queue.deadline, no retry is
// sent: the client gets the last try's answer (55P03), and the session goes
// on in step.
func TestLockQueueRetryLookPastTheDeadline(t *testing.T) {
	_, addr, obs := guardProxy(t, "lock_timeout: 400ms\nlock_timeout_retries: {attempts: 4, initial_backoff: 300ms, max_backoff: 400ms}\n"+
		"lock_queue: {deadline: 1500ms, threshold: 1s}\n", nil)
	ctx := context.Background()
	if err := pgExec("guard", "DROP TABLE IF EXISTS lq_r2", "CREATE TABLE lq_r2 (id int)", "GRANT ALL ON lq_r2 TO PUBLIC"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS lq_r2") })
	holder := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=nightly-report")
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "SELECT count(*) FROM lq_r2")
	defer commitAfter(holder, 6*time.Second)()
	migration, _ := guardConn(t, addr, pgtest.SuperUser, "")
	_, err := migration.Exec(ctx, "ALTER TABLE lq_r2 ADD COLUMN note text")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "55P03" {
		t.Fatalf("the migration: %v; want the last try's lock timeout (55P03)", err)
	}
	var n int
	if err := migration.QueryRow(ctx, "SELECT 7").Scan(&n); err != nil || n != 7 {
		t.Fatalf("after the refused retry: %d %v", n, err)
	}
	obs.mu.Lock()
	waits := slices.Clone(obs.queueWaits)
	obs.mu.Unlock()
	if !slices.Contains(waits, observe.LockQueueRefused) {
		t.Fatalf("waits %v; want the retry's look refused at the deadline", waits)
	}
}

// In a REPEATABLE READ block whose snapshot a statement has taken, the look
// before a LOCK TABLE (or DDL) reads with that snapshot and leaves nothing
// the client can see: the rows the block reads after the lock are those of
// its snapshot (a row committed meanwhile stays invisible), the command
// ids (cmin) of its writes before and after, its backend_xmin, and its own
// row of pg_stat_activity read afterwards (the look's snapshot of it is
// dropped) are what PostgreSQL gives without pgguard. Before the snapshot
// is taken there is no look (TestOwnQuestionsLeaveNoTrace: LOCK first, the
// read then sees the writer the LOCK waited for).
func TestLockQueueLookInRepeatableReadLeavesNoTrace(t *testing.T) {
	_, addr, obs := guardProxy(t, "lock_queue: {deadline: 10s, threshold: 300ms}\n", nil)
	ctx := context.Background()
	if err := pgExec("guard", "DROP TABLE IF EXISTS lq_rr", "CREATE TABLE lq_rr (id int)", "INSERT INTO lq_rr VALUES (1)",
		"GRANT ALL ON lq_rr TO PUBLIC"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS lq_rr") })
	play := func(t *testing.T, reader *pgx.Conn) []string {
		var out []string
		row := func(q string, args ...any) string {
			var v *string
			if err := reader.QueryRow(ctx, q, args...).Scan(&v); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			if v == nil {
				return "NULL"
			}
			return *v
		}
		other := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=nightly-report")
		var pid int
		if err := reader.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		xmin := func() string {
			var x *string
			if err := other.QueryRow(ctx, "SELECT (backend_xmin::text::bigint - pg_snapshot_xmin(pg_current_snapshot())::text::bigint)::text FROM pg_stat_activity WHERE pid = $1", pid).Scan(&x); err != nil {
				t.Fatal(err)
			}
			if x == nil {
				return "NULL"
			}
			return *x
		}
		mustExec(t, reader, "BEGIN ISOLATION LEVEL REPEATABLE READ")
		mustExec(t, reader, "INSERT INTO lq_rr VALUES (10)") // takes the snapshot, command id 0
		out = append(out, "rows before: "+row("SELECT count(*)::text FROM lq_rr"), "xmin before: "+xmin())
		// A row committed after the snapshot, and a long holder of a
		// lock that conflicts with the LOCK's, which the look waits for.
		mustExec(t, other, "INSERT INTO lq_rr VALUES (2)")
		holder := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=nightly-report")
		mustExec(t, holder, "BEGIN")
		mustExec(t, holder, "INSERT INTO lq_rr VALUES (3)")
		wait := commitAfter(holder, 1200*time.Millisecond)
		time.Sleep(400 * time.Millisecond)
		mustExec(t, reader, "LOCK TABLE lq_rr IN SHARE MODE")
		wait()
		mustExec(t, reader, "INSERT INTO lq_rr VALUES (11)")
		const own = "SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()"
		out = append(out, "rows after: "+row("SELECT count(*)::text FROM lq_rr"), "xmin after: "+xmin(),
			"cmin: "+row("SELECT string_agg(id || ':' || cmin, ',' ORDER BY id) FROM lq_rr WHERE id >= 10"),
			"own activity row: "+row(own), "isolation: "+row("SHOW transaction_isolation"))
		mustExec(t, reader, "ROLLBACK")
		mustExec(t, other, "DELETE FROM lq_rr WHERE id <> 1")
		return out
	}
	direct := play(t, connect(t, pg.DSN(pgtest.SuperUser, "guard")))
	through, _ := guardConn(t, addr, pgtest.SuperUser, "")
	got := play(t, through)
	if !slices.Equal(got, direct) {
		t.Fatalf("through pgguard:\n%q\ndirectly:\n%q", got, direct)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.queueWaits) != 1 {
		t.Fatalf("waits outside the queue %v; want the LOCK to have waited once, after the block's snapshot", obs.queueWaits)
	}
}
