package proxy

import (
	"context"
	"errors"
	_ "github.com/pgguard/pgguard/policy/rules" // the rules register themselves with the engine
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"

	"github.com/pgguard/pgguard/internal/observe"
)

// bigRows is the size of the "large" table of the enforcement tests: well
// above the default size threshold.
const bigRows = 300000

var enforceDB struct {
	once sync.Once
	err  error
}

// enforceDatabase creates, once, a database "guard" with a large table
// "big" and a small one "small".
func enforceDatabase(t *testing.T) {
	t.Helper()
	needPG(t)
	enforceDB.once.Do(func() {
		if _, enforceDB.err = pg.CreateDatabase("guard"); enforceDB.err != nil {
			return
		}
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, pg.DSN(pgtest.SuperUser, "guard"))
		if err != nil {
			enforceDB.err = err
			return
		}
		defer conn.Close(ctx)
		for _, q := range []string{
			"CREATE TABLE big (id bigint PRIMARY KEY, account int NOT NULL, note text)",
			"INSERT INTO big SELECT g, g % 1000, md5(g::text) FROM generate_series(1, " + strconv.Itoa(bigRows) + ") g",
			"CREATE TABLE small (id int PRIMARY KEY, v text)",
			"ANALYZE",
			"GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC",
			"GRANT CREATE ON SCHEMA public TO PUBLIC",
		} {
			if _, err := conn.Exec(ctx, q); err != nil {
				enforceDB.err = err
				return
			}
		}
	})
	if enforceDB.err != nil {
		t.Fatal(enforceDB.err)
	}
}

// guardProxy starts a proxy with the policy in rules (YAML; "" for the
// built-in one) in front of the guard database.
func guardProxy(t *testing.T, rules string, mut func(*Config)) (*Server, string, *countingObserver) {
	t.Helper()
	enforceDatabase(t)
	var cfg *policy.Config
	var err error
	if rules == "" {
		cfg, err = policy.DefaultConfig()
	} else {
		cfg, err = policy.ParseConfig([]byte(rules), "test-rules.yaml")
	}
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rules, "lock_queue") {
		// These tests hold locks to see lock_timeout and its retries act;
		// the look at the lock queue, which would wait for such a holder
		// instead, has tests of its own (lockqueue_test.go).
		cfg.LockQueue.Deadline = 0
	}
	eng, err := policy.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	obs := &countingObserver{}
	srv, addr := startProxy(t, func(c *Config) {
		c.Policy = NewPolicy(eng)
		c.Observer = obs
		if mut != nil {
			mut(c)
		}
	})
	return srv, addr, obs
}

type countingObserver struct {
	observe.Nop
	mu       sync.Mutex
	events   []observe.StatementEvent
	retries  atomic.Int32
	cleanups atomic.Int32
	// queueWaits are the outcomes of waits outside the lock queue.
	queueWaits []string
}

func (o *countingObserver) Statement(ev *observe.StatementEvent) {
	o.mu.Lock()
	o.events = append(o.events, *ev)
	o.mu.Unlock()
}
func (o *countingObserver) LockTimeoutRetry(string) { o.retries.Add(1) }
func (o *countingObserver) LockQueueWait(_ string, _ time.Duration, _ int, _, outcome string) {
	o.mu.Lock()
	o.queueWaits = append(o.queueWaits, outcome)
	o.mu.Unlock()
}
func (o *countingObserver) ConcurrentCleanup(string) { o.cleanups.Add(1) }

// guardConn connects to the guard database through addr and collects the
// notices the session receives.
func guardConn(t *testing.T, addr, user, extra string) (*pgx.Conn, *[]*pgconn.Notice) {
	t.Helper()
	cfg, err := pgx.ParseConfig(strings.Replace(dsn(addr, user, extra), "/postgres?", "/guard?", 1))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	notices := &[]*pgconn.Notice{}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		*notices = append(*notices, n)
		mu.Unlock()
	}
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn, notices
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string) pgconn.CommandTag {
	t.Helper()
	tag, err := conn.Exec(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return tag
}

// wantRefusal checks that err is pgguard's refusal naming rule.
func wantRefusal(t *testing.T, err error, rule string) *pgconn.PgError {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want pgguard's refusal (%s)", err, rule)
	}
	if pe.Code != "42501" || pe.Severity != "ERROR" || !strings.HasPrefix(pe.Message, "pgguard: "+rule+":") || pe.Hint == "" || pe.Detail == "" {
		t.Fatalf("refusal = %s %s %q detail %q hint %q, want 42501 pgguard: %s: ... with detail and hint", pe.Severity, pe.Code, pe.Message, pe.Detail, pe.Hint, rule)
	}
	return pe
}

func indexValid(t *testing.T, name string) (exists, valid bool) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), pg.DSN(pgtest.SuperUser, "guard"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(context.Background(), "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)", name).Scan(&valid)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true, valid
}

func dropIndex(t *testing.T, name string) {
	t.Helper()
	if err := pgExec("guard", "DROP INDEX IF EXISTS "+name); err != nil {
		t.Fatal(err)
	}
}

func pgExec(db string, sql ...string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN(pgtest.SuperUser, db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, q := range sql {
		if _, err := conn.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// The rewrite: CREATE INDEX on the large table runs CONCURRENTLY, the
// client gets a notice and the original command tag, and a writer is never
// blocked while the index builds.
func TestRewriteCreateIndexConcurrently(t *testing.T) {
	for _, mode := range []string{"simple_protocol", "cache_statement", "exec"} {
		t.Run(mode, func(t *testing.T) {
			// Scope session: the lift must put the policy's 3s back.
			_, addr, _ := guardProxy(t, "lock_timeout_scope: session\n", nil)
			conn, notices := guardConn(t, addr, pgtest.SuperUser, "default_query_exec_mode="+mode)
			name := "big_note_" + mode
			defer dropIndex(t, name)

			writer, _ := guardConn(t, addr, pgtest.SuperUser, "")
			w := pgtest.StartWriter(writer, "UPDATE big SET note = note WHERE id = $1", func(i int) any { return 1 + i%1000 })
			time.Sleep(50 * time.Millisecond)
			start := time.Now()
			tag := mustExec(t, conn, "CREATE INDEX "+name+" ON big (md5(note || id::text))")
			build := time.Since(start)
			maxWait, writes, werr := w.Stop()
			if werr != nil {
				t.Fatalf("writer: %v", werr)
			}
			if tag.String() != "CREATE INDEX" {
				t.Fatalf("command tag %q", tag)
			}
			if ex, valid := indexValid(t, name); !ex || !valid {
				t.Fatalf("index exists=%v valid=%v", ex, valid)
			}
			if len(*notices) == 0 || !strings.Contains((*notices)[0].Message, "CONCURRENTLY") {
				t.Fatalf("notices %v, want one saying it was rewritten", *notices)
			}
			if maxWait > build/2 || writes < 5 {
				t.Fatalf("writer waited up to %v (%d writes) during a %v build: it was blocked", maxWait, writes, build)
			}
			var lt string
			conn.QueryRow(context.Background(), "SHOW lock_timeout").Scan(&lt)
			if lt != "3s" {
				t.Fatalf("lock_timeout after the concurrent build = %q, want it restored to 3s", lt)
			}
		})
	}
}

// Inside a transaction block the same statement is refused; the
// transaction is aborted and COMMIT rolls back what came before.
func TestRefuseInsideTransaction(t *testing.T) {
	for _, mode := range []string{"simple_protocol", "cache_statement"} {
		t.Run(mode, func(t *testing.T) {
			_, addr, _ := guardProxy(t, "", nil)
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "default_query_exec_mode="+mode)
			ctx := context.Background()
			mustExec(t, conn, "DELETE FROM small WHERE id = 7")
			mustExec(t, conn, "BEGIN")
			mustExec(t, conn, "INSERT INTO small VALUES (7, 'before')")
			_, err := conn.Exec(ctx, "CREATE INDEX big_in_tx ON big (account)")
			pe := wantRefusal(t, err, "create-index")
			if !strings.Contains(pe.Hint, "transaction") {
				t.Errorf("hint %q does not say how to run it outside a transaction", pe.Hint)
			}
			if conn.PgConn().TxStatus() != 'E' {
				t.Fatalf("tx status %c, want E (aborted)", conn.PgConn().TxStatus())
			}
			tag, err := conn.Exec(ctx, "COMMIT")
			if err != nil || tag.String() != "ROLLBACK" {
				t.Fatalf("COMMIT = %q, %v; want ROLLBACK", tag, err)
			}
			var n int
			conn.QueryRow(ctx, "SELECT count(*) FROM small WHERE id = 7").Scan(&n)
			if n != 0 {
				t.Fatal("the insert before the refused statement was committed")
			}
			if ex, _ := indexValid(t, "big_in_tx"); ex {
				t.Fatal("refused index exists")
			}
		})
	}
}

// In a multi-statement Query nothing runs; the session stays idle.
func TestRefuseMultiStatementQuery(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "default_query_exec_mode=simple_protocol")
	mustExec(t, conn, "DELETE FROM small WHERE id = 8")
	_, err := conn.Exec(context.Background(), "INSERT INTO small VALUES (8, 'x'); ALTER TABLE big ADD COLUMN token uuid DEFAULT gen_random_uuid()")
	wantRefusal(t, err, "add-column-volatile-default")
	if conn.PgConn().TxStatus() != 'I' {
		t.Fatalf("tx status %c", conn.PgConn().TxStatus())
	}
	var n int
	conn.QueryRow(context.Background(), "SELECT count(*) FROM small WHERE id = 8").Scan(&n)
	if n != 0 {
		t.Fatal("a statement of the refused Query ran")
	}
}

// A pgx batch is one pipeline: Parse/Bind/Execute for each statement, one
// Sync. A refused statement fails there, the implicit transaction rolls
// back what ran before it, and the session goes on.
func TestRefuseInPipeline(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
	ctx := context.Background()
	mustExec(t, conn, "DELETE FROM small WHERE id IN (9, 10)")
	b := &pgx.Batch{}
	b.Queue("INSERT INTO small VALUES (9, 'first')")
	b.Queue("ALTER TABLE big RENAME COLUMN note TO remark")
	b.Queue("INSERT INTO small VALUES (10, 'after')")
	err := conn.SendBatch(ctx, b).Close()
	wantRefusal(t, err, "rename-column")
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM small WHERE id IN (9, 10)").Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows from the refused pipeline: %d, %v", n, err)
	}
	// BEGIN in the same pipeline makes CREATE INDEX not alone: refused,
	// not rewritten (CONCURRENTLY would fail there).
	b = &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("CREATE INDEX big_pipe ON big (account)")
	b.Queue("COMMIT")
	err = conn.SendBatch(ctx, b).Close()
	wantRefusal(t, err, "create-index")
	if conn.PgConn().TxStatus() == 'T' {
		mustExec(t, conn, "ROLLBACK")
	}
	if ex, _ := indexValid(t, "big_pipe"); ex {
		t.Fatal("index from the refused pipeline exists")
	}
	mustExec(t, conn, "SELECT 1")
}

func TestRefuseExtendedProtocolOutsideTransaction(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	for _, mode := range []string{"cache_statement", "exec", "describe_exec"} {
		conn, _ := guardConn(t, addr, pgtest.SuperUser, "default_query_exec_mode="+mode)
		_, err := conn.Exec(context.Background(), "ALTER TABLE big ALTER COLUMN note SET NOT NULL")
		if mode == "cache_statement" {
			wantRefusal(t, err, "set-not-null")
		} else if err == nil {
			t.Fatalf("%s: SET NOT NULL passed", mode)
		}
		if conn.PgConn().TxStatus() != 'I' {
			t.Fatalf("%s: status %c", mode, conn.PgConn().TxStatus())
		}
		mustExec(t, conn, "SELECT 1")
	}
}

// Tables created in the open transaction are empty: the sequelize pattern
// createTable + addIndex + addConstraint in one transaction passes.
func TestCreatedTablesAreExempt(t *testing.T) {
	_, addr, obs := guardProxy(t, "", nil)
	for _, mode := range []string{"simple_protocol", "cache_statement"} {
		conn, _ := guardConn(t, addr, pgtest.SuperUser, "default_query_exec_mode="+mode)
		tbl := "fresh_" + mode
		mustExec(t, conn, "BEGIN")
		mustExec(t, conn, "CREATE TABLE "+tbl+" (id bigserial PRIMARY KEY, account int, ref bigint)")
		mustExec(t, conn, "CREATE INDEX "+tbl+"_account ON "+tbl+" (account)")
		mustExec(t, conn, "ALTER TABLE "+tbl+" ALTER COLUMN account SET NOT NULL")
		mustExec(t, conn, "COMMIT")
		// Created in an earlier transaction but empty: small by the catalog.
		mustExec(t, conn, "CREATE INDEX "+tbl+"_ref ON "+tbl+" (ref)")
		if err := pgExec("guard", "DROP TABLE "+tbl); err != nil {
			t.Fatal(err)
		}
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	for _, ev := range obs.events {
		if ev.Action == "reject" {
			t.Fatalf("refused: %+v", ev)
		}
	}
}

// Under lock_timeout_scope session every session gets the policy's
// lock_timeout and may not turn it off or raise it past the maximum.
func TestLockTimeoutGivenAndGuarded(t *testing.T) {
	_, addr, _ := guardProxy(t, "lock_timeout_scope: session\n", nil)
	conn, _ := guardConn(t, addr, pgtest.TrustUser, "")
	ctx := context.Background()
	var lt string
	conn.QueryRow(ctx, "SHOW lock_timeout").Scan(&lt)
	if lt != "3s" {
		t.Fatalf("lock_timeout = %q, want the policy's 3s", lt)
	}
	for _, q := range []string{"SET lock_timeout = 0", "SET lock_timeout = '1h'", "SELECT set_config('lock_timeout', '0', false)", "SET LOCAL lock_timeout TO DEFAULT"} {
		if _, err := conn.Exec(ctx, q); err == nil {
			if q == "SET LOCAL lock_timeout TO DEFAULT" {
				continue // DEFAULT is the session default pgguard set
			}
			t.Errorf("%s: allowed", q)
		} else {
			wantRefusal(t, err, "lock-timeout")
		}
	}
	mustExec(t, conn, "SET lock_timeout = '500ms'")
	mustExec(t, conn, "RESET lock_timeout")
	conn.QueryRow(ctx, "SHOW lock_timeout").Scan(&lt)
	if lt != "3s" {
		t.Fatalf("after RESET lock_timeout = %q, want 3s", lt)
	}
	for _, extra := range []string{"lock_timeout=0", "options=-c%20lock_timeout%3D0", "options=--lock_timeout%3D1h"} {
		_, err := pgx.Connect(ctx, dsn(addr, pgtest.TrustUser, extra))
		if pgCode(err) != "42501" || !strings.Contains(err.Error(), "lock_timeout") {
			t.Errorf("startup %s: %v, want FATAL 42501 about lock_timeout", extra, err)
		}
	}
	lower, _ := guardConn(t, addr, pgtest.TrustUser, "options=-c%20lock_timeout%3D250ms")
	lower.QueryRow(ctx, "SHOW lock_timeout").Scan(&lt)
	if lt != "250ms" {
		t.Fatalf("a lower startup lock_timeout was not kept: %q", lt)
	}
}

// A session holding a lock makes ALTER TABLE through pgguard fail within
// about lock_timeout per try instead of queueing; once the lock goes away a
// retry succeeds, invisibly to the client.
func TestLockTimeoutAndRetry(t *testing.T) {
	rules := "lock_timeout: 300ms\nlock_timeout_retries: {attempts: 3, initial_backoff: 100ms, max_backoff: 200ms}\n"
	_, addr, obs := guardProxy(t, rules, nil)
	ctx := context.Background()
	holder, err := pgx.Connect(ctx, pg.DSN(pgtest.SuperUser, "guard"))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
	defer pgExec("guard", "ALTER TABLE small DROP COLUMN IF EXISTS extra")

	// Held for good: every try fails after ~300ms, and the client gets 55P03.
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "LOCK TABLE small IN ACCESS SHARE MODE")
	start := time.Now()
	_, err = conn.Exec(ctx, "ALTER TABLE small ADD COLUMN extra int")
	el := time.Since(start)
	if pgCode(err) != "55P03" {
		t.Fatalf("err = %v, want 55P03", err)
	}
	if el < 900*time.Millisecond || el > 5*time.Second {
		t.Fatalf("3 tries took %v", el)
	}
	if obs.retries.Load() != 2 {
		t.Fatalf("%d retries counted, want 2", obs.retries.Load())
	}
	// Inside a transaction: no retry.
	mustExec(t, conn, "BEGIN")
	start = time.Now()
	_, err = conn.Exec(ctx, "ALTER TABLE small ADD COLUMN extra int")
	if pgCode(err) != "55P03" || time.Since(start) > 900*time.Millisecond {
		t.Fatalf("in a transaction: %v after %v, want one 55P03 try", err, time.Since(start))
	}
	mustExec(t, conn, "ROLLBACK")
	// Released during the retries: the client sees success.
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(400 * time.Millisecond)
		holder.Exec(ctx, "COMMIT")
	}()
	mustExec(t, conn, "ALTER TABLE small ADD COLUMN extra int")
	<-released
	if err := pgExec("guard", "ALTER TABLE small DROP COLUMN extra"); err != nil {
		t.Fatal(err)
	}

	// A direct connection, without pgguard's lock_timeout, just waits in the
	// lock queue (here until its statement_timeout gives up): that is what
	// pgguard prevents.
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "LOCK TABLE small IN ACCESS SHARE MODE")
	direct, err := pgx.Connect(ctx, pg.DSN(pgtest.SuperUser, "guard")+"&statement_timeout=1500")
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	start = time.Now()
	_, err = direct.Exec(ctx, "ALTER TABLE small ADD COLUMN extra int")
	if pgCode(err) != "57014" || time.Since(start) < 1400*time.Millisecond {
		t.Fatalf("direct: %v after %v, want it to wait until statement_timeout (57014)", err, time.Since(start))
	}
	mustExec(t, holder, "ROLLBACK")
}

func TestFailedConcurrentBuildIsCleanedUp(t *testing.T) {
	_, addr, obs := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
	defer dropIndex(t, "big_account_unique")
	// account has duplicates: the unique build fails after creating the index.
	_, err := conn.Exec(context.Background(), "CREATE UNIQUE INDEX CONCURRENTLY big_account_unique ON big (account)")
	if pgCode(err) != "23505" {
		t.Fatalf("err = %v, want the server's unique violation", err)
	}
	if ex, _ := indexValid(t, "big_account_unique"); ex {
		t.Fatal("the INVALID index of the failed build is still there")
	}
	if obs.cleanups.Load() != 1 {
		t.Fatalf("%d cleanups counted", obs.cleanups.Load())
	}
	mustExec(t, conn, "SELECT 1")
}

func TestWarnModeProfile(t *testing.T) {
	rules := `profiles:
  - name: uat
    match: {application_name: ["uat-*"]}
    mode: warn
`
	_, addr, _ := guardProxy(t, rules, nil)
	conn, notices := guardConn(t, addr, pgtest.SuperUser, "application_name=uat-migrate")
	defer pgExec("guard", "ALTER TABLE small RENAME COLUMN w TO v")
	mustExec(t, conn, "ALTER TABLE small RENAME COLUMN v TO w")
	if len(*notices) != 1 || (*notices)[0].Severity != "WARNING" || !strings.Contains((*notices)[0].Message, "rename-column") {
		t.Fatalf("notices %+v, want one WARNING naming rename-column", *notices)
	}
	strict, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=prod-migrate")
	_, err := strict.Exec(context.Background(), "ALTER TABLE small RENAME COLUMN w TO v2")
	wantRefusal(t, err, "rename-column")
}

// application_name set after the startup packet (pgjdbc sends its name
// with a SET) counts from the server's ParameterStatus on: the profile
// that matches it applies, the audit record carries it, a tool it names
// gets its own fix, and RESET (or a rolled-back SET) goes back.
func TestApplicationNameSetLater(t *testing.T) {
	rules := `profiles:
  - name: uat
    match: {application_name: ["uat-*"]}
    mode: warn
`
	_, addr, obs := guardProxy(t, rules, nil)
	ctx := context.Background()
	defer pgExec("guard", "ALTER TABLE small RENAME COLUMN w_later TO v")
	conn, notices := guardConn(t, addr, pgtest.SuperUser, "")
	mustExec(t, conn, "SET application_name = 'uat-migrate'")
	mustExec(t, conn, "ALTER TABLE small RENAME COLUMN v TO w_later")
	if len(*notices) != 1 || (*notices)[0].Severity != "WARNING" || !strings.Contains((*notices)[0].Message, "rename-column") {
		t.Fatalf("notices %+v, want one WARNING naming rename-column (profile uat)", *notices)
	}
	obs.mu.Lock()
	var app string
	for _, ev := range obs.events {
		if strings.Contains(ev.SQL, "w_later") {
			app = ev.ApplicationName
		}
	}
	obs.mu.Unlock()
	if app != "uat-migrate" {
		t.Fatalf("the audit record's application_name is %q, want uat-migrate", app)
	}
	mustExec(t, conn, "BEGIN")
	mustExec(t, conn, "SET application_name = 'prod-migrate'")
	mustExec(t, conn, "ROLLBACK")
	mustExec(t, conn, "ALTER TABLE small RENAME COLUMN w_later TO v")
	mustExec(t, conn, "ALTER TABLE small RENAME COLUMN v TO w_later")
	mustExec(t, conn, "RESET application_name")
	_, err := conn.Exec(ctx, "ALTER TABLE small RENAME COLUMN w_later TO v2")
	wantRefusal(t, err, "rename-column")

	knex, _ := guardConn(t, addr, pgtest.SuperUser, "")
	mustExec(t, knex, "SET application_name = 'knex'")
	mustExec(t, knex, "BEGIN")
	_, err = knex.Exec(ctx, "CREATE INDEX big_later ON big (account)")
	mustExec(t, knex, "ROLLBACK")
	wantRefusal(t, err, "create-index")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || !strings.Contains(pe.Message+pe.Detail+pe.Hint, "exports.config = { transaction: false }") {
		t.Fatalf("the refusal gives no knex fix: %v", err)
	}
}

func TestEscapeHatchForListedRoles(t *testing.T) {
	rules := "annotations: {allowed_roles: [postgres]}\n"
	_, addr, obs := guardProxy(t, rules, nil)
	stmt := "-- pgguard:allow rename-column reason=\"column unused since v42\"\nALTER TABLE small RENAME COLUMN v TO v3"
	other, _ := guardConn(t, addr, pgtest.TrustUser, "")
	_, err := other.Exec(context.Background(), stmt)
	wantRefusal(t, err, "rename-column")
	admin, _ := guardConn(t, addr, pgtest.SuperUser, "")
	mustExec(t, admin, stmt)
	mustExec(t, admin, "-- pgguard:allow rename-column reason=\"undo\"\nALTER TABLE small RENAME COLUMN v3 TO v")
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.events) < 3 {
		t.Fatalf("events %+v", obs.events)
	}
}

// A migration tool killed during a concurrent build: pgguard cancels the
// build and drops the INVALID index it leaves, so the next run starts clean.
func TestClientLeavesDuringConcurrentBuild(t *testing.T) {
	_, addr, obs := guardProxy(t, "", nil)
	holder, err := pgx.Connect(context.Background(), pg.DSN(pgtest.SuperUser, "guard"))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	// An open transaction that touched big makes the build wait in its
	// second phase, after the INVALID index exists.
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "SELECT count(*) FROM big WHERE id = 1")
	conn, err := pgconn.Connect(context.Background(), strings.Replace(dsn(addr, pgtest.SuperUser, "application_name=leaving"), "/postgres?", "/guard?", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer dropIndex(t, "big_leaving")
	conn.Frontend().Send(&pgproto3.Query{String: "CREATE INDEX big_leaving ON big (account)"})
	conn.Frontend().Flush()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ex, valid := indexValid(t, "big_leaving"); ex && !valid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the concurrent build never created its index entry")
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn.Conn().Close()
	// pgguard cancels the build, then drops its index with DROP INDEX
	// CONCURRENTLY, which waits for the open transaction like the build did.
	time.Sleep(300 * time.Millisecond)
	mustExec(t, holder, "COMMIT")
	deadline = time.Now().Add(10 * time.Second)
	for {
		if ex, _ := indexValid(t, "big_leaving"); !ex && obs.cleanups.Load() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the INVALID index of the abandoned build was not dropped")
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitGone(t, "leaving")
}

// ADD CONSTRAINT ... NOT VALID then VALIDATE in the same transaction keeps
// the ADD's lock through the scan: refused; in separate transactions, fine.
func TestValidateInSameTransaction(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
	defer pgExec("guard", "ALTER TABLE big DROP CONSTRAINT IF EXISTS big_account_positive")
	mustExec(t, conn, "BEGIN")
	mustExec(t, conn, "ALTER TABLE big ADD CONSTRAINT big_account_positive CHECK (account >= 0) NOT VALID")
	_, err := conn.Exec(context.Background(), "ALTER TABLE big VALIDATE CONSTRAINT big_account_positive")
	wantRefusal(t, err, "validate-in-same-transaction")
	mustExec(t, conn, "ROLLBACK")
	mustExec(t, conn, "ALTER TABLE big ADD CONSTRAINT big_account_positive CHECK (account >= 0) NOT VALID")
	mustExec(t, conn, "ALTER TABLE big VALIDATE CONSTRAINT big_account_positive")
}

type panickyObserver struct{ observe.Nop }

func (panickyObserver) Statement(ev *observe.StatementEvent) {
	if strings.Contains(ev.SQL, "boom") {
		panic("observer bug")
	}
}

// A bug met by one session ends that session, not the proxy.
func TestPanicEndsOnlyThatSession(t *testing.T) {
	_, addr, _ := guardProxy(t, "", func(c *Config) { c.Observer = panickyObserver{} })
	bystander, _ := guardConn(t, addr, pgtest.SuperUser, "")
	victim, _ := guardConn(t, addr, pgtest.SuperUser, "")
	if _, err := victim.Exec(context.Background(), "CREATE TABLE boom (id int)"); err == nil {
		t.Fatal("the panicking session went on")
	}
	mustExec(t, bystander, "SELECT 1")
	again, _ := guardConn(t, addr, pgtest.SuperUser, "")
	mustExec(t, again, "SELECT 1")
	pgExec("guard", "DROP TABLE IF EXISTS boom")
}

// COPY FROM STDIN in the simple protocol is not extended-protocol work:
// the next statement is still alone and in autocommit, so a CREATE INDEX
// after it is rewritten, not refused.
func TestRewriteAfterCopy(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
	defer dropIndex(t, "big_after_copy")
	mustExec(t, conn, "CREATE TEMP TABLE copied (id int)")
	if _, err := conn.PgConn().CopyFrom(context.Background(), strings.NewReader("1\n2\n"), "COPY copied FROM STDIN"); err != nil {
		t.Fatal(err)
	}
	mustExec(t, conn, "CREATE INDEX big_after_copy ON big (account)")
	if ex, valid := indexValid(t, "big_after_copy"); !ex || !valid {
		t.Fatalf("index exists=%v valid=%v", ex, valid)
	}
}

// TestExplainStatement: a statement with parameters is estimated with a
// generic plan where the server has one (16+) and not at all before, so
// that no EXPLAIN fails on the server for want of parameter values.
func TestExplainStatement(t *testing.T) {
	tests := []struct {
		sql     string
		version int
		want    string
	}{
		{"UPDATE t SET a = 1 WHERE b > 10", 150000, "EXPLAIN (FORMAT JSON) UPDATE t SET a = 1 WHERE b > 10"},
		{"UPDATE t SET a = $1 WHERE b > $2", 150018, ""},
		{"DELETE FROM t WHERE b > $1", 160000, "EXPLAIN (GENERIC_PLAN, FORMAT JSON) DELETE FROM t WHERE b > $1"},
		{"UPDATE t SET a$1 = 0 WHERE b > 0", 150000, "EXPLAIN (FORMAT JSON) UPDATE t SET a$1 = 0 WHERE b > 0"},
		{"$1", 150000, ""},
		{"UPDATE t SET a = $$x$$ WHERE b > 0", 150000, "EXPLAIN (FORMAT JSON) UPDATE t SET a = $$x$$ WHERE b > 0"},
	}
	for _, tt := range tests {
		got, ok := pgcatalog.ExplainStatement(tt.sql, tt.version)
		if ok != (tt.want != "") || got != tt.want {
			t.Errorf("pgcatalog.ExplainStatement(%q, %d) = %q, %v; want %q", tt.sql, tt.version, got, ok, tt.want)
		}
	}
	needPG(t)
	// On the real server, the EXPLAIN chosen for a statement with
	// parameters must not fail.
	conn := connect(t, pg.DSN("postgres", "postgres"))
	if explain, ok := pgcatalog.ExplainStatement("SELECT 1 WHERE $1::int > 0", pg.Version); ok {
		mustExec(t, conn, explain)
	}
}
