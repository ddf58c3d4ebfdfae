// Command lockqueue measures what a migration does to the application's
// traffic while a long transaction holds a lock on the migrated table: the
// scenario of the lock-queue issue. pgbench runs keyed UPDATE and SELECT on
// pgbench_accounts (300,000 rows at scale 3) with 8 clients; a second
// session takes a lock on the table and stays idle in its transaction for
// 12 s, as a report or a forgotten psql does (--blocker: a read, a row lock
// with SELECT ... FOR UPDATE, a SHARE lock, an open cursor with or without
// HOLD; all by default); a migration sends ALTER TABLE ... ADD
// COLUMN note text (fast, allowed) through pgguard. It is played with
// pgguard configured as before (a blanket lock_timeout, no look at the lock
// queue) and as now (lock_timeout for DDL only, the look), the application
// connecting straight to PostgreSQL and through pgguard, and reports the
// application transactions that took 500 ms or more, the slowest, the
// clients pgbench aborted, and how the migration ended. `make
// bench-lockqueue` runs it; it writes bench/results/<date>-lockqueue.md.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// configs are the pgguard policies compared.
var configs = []struct{ name, rules string }{
	{"before: blanket lock_timeout, no look", "lock_timeout_scope: session\nlock_queue: {deadline: 0s}\n"},
	{"now: lock_timeout for DDL, look (deadline 1m)", ""},
	{"now, deadline 5s (shorter than the holder)", "lock_queue: {deadline: 5s}\n"},
}

const db = "lockqueue"

// blockers are what the long transaction holds on pgbench_accounts.
var blockers = []struct {
	name, sql string
	// app is the application's traffic: "" keyed UPDATE + SELECT, "read"
	// the SELECT alone (pgbench -S's statement; for a SHARE holder,
	// whose lock blocks the application's writes by itself, with or
	// without a migration), "insert" INSERTs of new accounts alone.
	app string
	// active: sql is one statement that runs for the whole hold (not
	// BEGIN, sql, idle); aborted: sql fails, leaving the transaction
	// idle in transaction (aborted).
	active, aborted bool
	// setup runs once before the runs of this blocker.
	setup string
}{
	{name: "read", sql: "SELECT count(*) FROM pgbench_accounts"},
	{name: "rowlock", sql: "SELECT aid FROM pgbench_accounts WHERE aid = 1 FOR UPDATE"},
	{name: "share", sql: "LOCK TABLE pgbench_accounts IN SHARE MODE", app: "read"},
	{name: "cursor", sql: "DECLARE lq_c CURSOR FOR SELECT * FROM pgbench_accounts; FETCH 10 FROM lq_c"},
	{name: "cursorhold", sql: "DECLARE lq_c CURSOR WITH HOLD FOR SELECT * FROM pgbench_accounts; FETCH 10 FROM lq_c"},
	// A long query still running, not idle: its transaction is the
	// statement's own.
	{name: "active", sql: "SELECT count(*) FROM pgbench_accounts, pg_catalog.pg_sleep(%s) WHERE aid = 1", active: true},
	// A failed statement leaves the transaction aborted: PostgreSQL has
	// released its locks, nothing is in the migration's way.
	{name: "aborted", sql: "SELECT count(*) FROM pgbench_accounts; SELECT 1/0", aborted: true},
	// A KEY SHARE row lock and ROW SHARE on the table, taken by the
	// foreign key check of an INSERT into a referencing table.
	{name: "keyshare", sql: "INSERT INTO lq_ref VALUES (1)",
		setup: "CREATE TABLE IF NOT EXISTS lq_ref (aid int REFERENCES pgbench_accounts)"},
	// The application's traffic only reads, or only inserts.
	{name: "read-readapp", sql: "SELECT count(*) FROM pgbench_accounts", app: "read"},
	{name: "rowlock-insertapp", sql: "SELECT aid FROM pgbench_accounts WHERE aid = 1 FOR UPDATE", app: "insert"},
}

// blockerText says what a blocker holds, for the report.
var blockerText = map[string]string{
	"read":              "a read (SELECT count(*)), idle",
	"rowlock":           "a row lock (SELECT ... FOR UPDATE of a row the application does not update), idle",
	"share":             "a SHARE lock (LOCK TABLE ... IN SHARE MODE), idle; the application only reads",
	"cursor":            "an open cursor (DECLARE ... CURSOR, FETCH 10), idle",
	"cursorhold":        "an open cursor WITH HOLD (DECLARE ... CURSOR WITH HOLD, FETCH 10) in its transaction, idle",
	"active":            "a read still running (SELECT ... pg_sleep for the whole hold), active, not idle",
	"aborted":           "nothing: a read, then a failed statement (idle in transaction (aborted): PostgreSQL has released its locks)",
	"keyshare":          "a KEY SHARE row lock and ROW SHARE on the table (an INSERT into a table whose foreign key references it), idle",
	"read-readapp":      "a read (SELECT count(*)), idle; the application only reads (pgbench -S's SELECT)",
	"rowlock-insertapp": "a row lock (SELECT ... FOR UPDATE), idle; the application only inserts new accounts",
}

type options struct {
	pgguard  string
	duration time.Duration
	hold     time.Duration
	clients  int
	out      string
	only     string // run only the configurations whose name contains it
	blocker  string // run only this blocker ("" or "all": every one)
	suffix   string // the report is <date>-lockqueue[-suffix].md
}

// result is one run of the scenario.
type result struct {
	blocker       string
	config, route string
	slow          int // application transactions that took 500 ms or more
	// slowAtRun: of those, the ones in flight when the migration's
	// statement ended (queued behind it, or it behind them); the rest
	// stalled while nothing of the migration was in the lock queue.
	slowAtRun int
	slowest   time.Duration // the slowest application transaction
	tx        int           // application transactions completed
	aborted   int           // pgbench clients aborted
	migration string        // how the ALTER ended, and after how long
}

func main() {
	var o options
	flag.StringVar(&o.pgguard, "pgguard", "bin/pgguard", "path of the pgguard binary (`make build`)")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "length of each pgbench run")
	flag.DurationVar(&o.hold, "hold", 12*time.Second, "how long the long transaction stays idle")
	flag.IntVar(&o.clients, "clients", 8, "pgbench clients")
	flag.StringVar(&o.out, "out", "bench/results", "directory for the report")
	flag.StringVar(&o.only, "only", "", "run only the pgguard configurations whose name contains this")
	flag.StringVar(&o.blocker, "blocker", "all", "what the long transaction holds: read, rowlock, share, cursor, cursorhold, active, aborted, keyshare, read-readapp, rowlock-insertapp, or all")
	flag.StringVar(&o.suffix, "suffix", "", "name the report <date>-lockqueue-<suffix>.md (not to replace an earlier one)")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "lockqueue:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if _, err := os.Stat(o.pgguard); err != nil {
		return fmt.Errorf("pgguard binary: %w (run `make build` first)", err)
	}
	work, err := os.MkdirTemp("", "pgguard-lockqueue-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	step("starting a throwaway PostgreSQL; pgbench -i -s 3 (300,000 accounts)")
	pg, err := pgtest.Start(pgtest.Options{Settings: map[string]string{"max_connections": "100"}})
	if err != nil {
		return fmt.Errorf("starting PostgreSQL: %w", err)
	}
	defer pg.Close()
	if _, err := pg.CreateDatabase(db); err != nil {
		return err
	}
	pgbench := pg.Tool("pgbench")
	if out, err := pgbenchCmd(ctx, pgbench, pg.Addr(), "-i", "-q", "-s", "3", db).CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	script := filepath.Join(work, "app.sql")
	if err := os.WriteFile(script, []byte("\\set aid random(2, 300000)\n"+
		"UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n"+
		"SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n"), 0o644); err != nil {
		return err
	}
	readScript := filepath.Join(work, "app-read.sql")
	if err := os.WriteFile(readScript, []byte("\\set aid random(2, 300000)\n"+
		"SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n"), 0o644); err != nil {
		return err
	}
	insertScript := filepath.Join(work, "app-insert.sql")
	if err := os.WriteFile(insertScript, []byte("\\set aid random(1000000, 2000000000)\n"+
		"INSERT INTO pgbench_accounts (aid, bid, abalance, filler) VALUES (:aid, 1, 0, '') ON CONFLICT DO NOTHING;\n"), 0o644); err != nil {
		return err
	}
	var results []result
	known := false
	for _, bl := range blockers {
		if o.blocker != "" && o.blocker != "all" && o.blocker != bl.name {
			continue
		}
		known = true
		app := script
		switch bl.app {
		case "read":
			app = readScript
		case "insert":
			app = insertScript
		}
		if bl.setup != "" {
			if err := pg.ExecAs(pgtest.SuperUser, db, bl.setup); err != nil {
				return err
			}
		}
		h := holding{sql: bl.sql, active: bl.active, aborted: bl.aborted}
		if bl.active {
			h.sql = fmt.Sprintf(bl.sql, strconv.FormatFloat(o.hold.Seconds(), 'f', -1, 64))
		}
		rs, err := runConfigs(ctx, o, pg, pgbench, app, work, bl.name, h)
		if err != nil {
			return err
		}
		results = append(results, rs...)
	}
	if !known {
		var names []string
		for _, bl := range blockers {
			names = append(names, bl.name)
		}
		return fmt.Errorf("unknown --blocker %q (%s, all)", o.blocker, strings.Join(names, ", "))
	}
	return writeReport(o, pg, results)
}

// runConfigs plays the scenario with each pgguard configuration and both
// routes of the application, the long transaction running hold.
func runConfigs(ctx context.Context, o options, pg *pgtest.Server, pgbench, script, work, blocker string, hold holding) ([]result, error) {
	var results []result
	for i, c := range configs {
		if !strings.Contains(c.name, o.only) {
			continue
		}
		rules := filepath.Join(work, fmt.Sprintf("rules-%d.yaml", i))
		if err := os.WriteFile(rules, []byte(c.rules), 0o644); err != nil {
			return nil, err
		}
		guard, stop, err := startPgguard(o.pgguard, pg.Addr(), rules, filepath.Join(work, fmt.Sprintf("pgguard-%s-%d.log", blocker, i)))
		if err != nil {
			return nil, err
		}
		for _, route := range []struct{ name, addr string }{{"straight to PostgreSQL", pg.Addr()}, {"through pgguard", guard}} {
			step(fmt.Sprintf("blocker %s; %s; application %s", blocker, c.name, route.name))
			r, err := scenario(ctx, o, pg, pgbench, script, hold, route.addr, guard, filepath.Join(work, fmt.Sprintf("run-%s-%d-%s", blocker, i, route.name[:8])))
			if err != nil {
				stop()
				return nil, err
			}
			r.blocker, r.config, r.route = blocker, c.name, route.name
			results = append(results, r)
			fmt.Fprintf(os.Stderr, "    %d tx, %d at 500 ms or more (%d in flight when the migration's statement ended), slowest %v, %d clients aborted; migration: %s\n",
				r.tx, r.slow, r.slowAtRun, r.slowest.Round(time.Millisecond), r.aborted, r.migration)
		}
		stop()
	}
	return results, nil
}

// holding is what the long transaction does (a blocker's).
type holding struct {
	sql             string
	active, aborted bool
}

// scenario plays one run: pgbench against app, the long transaction, and
// the migration through guard.
func scenario(ctx context.Context, o options, pg *pgtest.Server, pgbench, script string, hold holding, app, guard, dir string) (result, error) {
	var r result
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	admin, err := pgx.Connect(ctx, pg.DSN(pgtest.SuperUser, db))
	if err != nil {
		return r, err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "ALTER TABLE pgbench_accounts DROP COLUMN IF EXISTS note"); err != nil {
		return r, err
	}
	if _, err := admin.Exec(ctx, "DELETE FROM pgbench_accounts WHERE aid > 300000"); err != nil { // an inserting application's
		return r, err
	}
	cmd := pgbenchCmd(ctx, pgbench, app, "-n", "-f", script, "-c", strconv.Itoa(o.clients), "-j", "2",
		"-T", strconv.Itoa(int(o.duration.Seconds())), "-l", "--log-prefix", "tx", db)
	cmd.Dir = dir
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return r, err
	}
	// The long transaction: hold, then idle.
	holder, err := pgx.Connect(ctx, pg.DSN(pgtest.SuperUser, db)+"&application_name=nightly-report")
	if err != nil {
		return r, err
	}
	defer holder.Close(ctx)
	time.Sleep(2 * time.Second)
	released := make(chan struct{})
	if hold.active {
		// One statement running for the whole hold.
		go func() {
			defer close(released)
			holder.Exec(ctx, hold.sql)
		}()
	} else {
		if _, err := holder.Exec(ctx, "BEGIN"); err != nil {
			return r, err
		}
		if _, err := holder.Exec(ctx, hold.sql); err != nil && !hold.aborted {
			return r, err
		}
		go func() {
			defer close(released)
			time.Sleep(o.hold)
			holder.Exec(ctx, "ROLLBACK")
			holder.Exec(ctx, "CLOSE ALL") // a cursor WITH HOLD outlives the transaction
		}()
	}
	// The migration, through pgguard, once the holder has held for a moment.
	time.Sleep(1500 * time.Millisecond)
	host, port, _ := net.SplitHostPort(guard)
	mig, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s@%s:%s/%s?sslmode=disable&application_name=migration", pgtest.SuperUser, host, port, db))
	if err != nil {
		return r, err
	}
	start := time.Now()
	_, err = mig.Exec(ctx, "ALTER TABLE pgbench_accounts ADD COLUMN note text")
	end := time.Now()
	took := end.Sub(start).Round(100 * time.Millisecond)
	mig.Close(ctx)
	var pe *pgconn.PgError
	switch {
	case err == nil:
		r.migration = fmt.Sprintf("done after %v", took)
	case errors.As(err, &pe):
		r.migration = fmt.Sprintf("failed after %v: %s %s", took, pe.Code, firstWords(pe.Message, 12))
	default:
		r.migration = fmt.Sprintf("failed after %v: %v", took, err)
	}
	<-released
	cmd.Wait() // pgbench exits non-zero when clients aborted; the log says how many
	r.aborted = len(abortedRe.FindAllString(out.String(), -1))
	// A refused migration never reached the lock queue: nothing was in
	// flight behind it.
	ran := err == nil || (errors.As(err, &pe) && pe.Code != "42501")
	if err := readLog(dir, &r, end, ran); err != nil {
		return r, fmt.Errorf("%w\n%s", err, out.String())
	}
	return r, nil
}

// pgbench prints "pgbench: error: client 3 script 0 aborted in command ..."
var abortedRe = regexp.MustCompile(`client \d+ (script \d+ )?aborted`)

// readLog reads pgbench's per-transaction log (-l): the third field is the
// transaction's latency in microseconds.
func readLog(dir string, r *result, migrationEnd time.Time, ran bool) error {
	files, err := filepath.Glob(filepath.Join(dir, "tx.*"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no pgbench log in %s", dir)
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 {
				continue
			}
			us, err := strconv.ParseInt(fields[2], 10, 64)
			if err != nil {
				continue // "failed" or "skipped"
			}
			d := time.Duration(us) * time.Microsecond
			r.tx++
			if d >= 500*time.Millisecond {
				r.slow++
				// Fields 5 and 6: when the transaction ended (epoch
				// seconds, microseconds).
				if len(fields) >= 6 && ran {
					secs, _ := strconv.ParseInt(fields[4], 10, 64)
					usec, _ := strconv.ParseInt(fields[5], 10, 64)
					ended := time.Unix(secs, usec*1000)
					if !ended.Before(migrationEnd.Add(-50*time.Millisecond)) && !ended.Add(-d).After(migrationEnd) {
						r.slowAtRun++
					}
				}
			}
			r.slowest = max(r.slowest, d)
		}
		fh.Close()
	}
	return nil
}

func pgbenchCmd(ctx context.Context, pgbench, addr string, args ...string) *exec.Cmd {
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.CommandContext(ctx, pgbench, append([]string{"-h", host, "-p", port, "-U", pgtest.SuperUser}, args...)...)
	cmd.Env = append(os.Environ(), "PGSSLMODE=disable", "PGAPPNAME=app")
	return cmd
}

// startPgguard runs pgguard with rules in front of upstream; stop ends it.
func startPgguard(bin, upstream, rules, logPath string) (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr = l.Addr().String()
	l.Close()
	logf, err := os.Create(logPath)
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "serve", "--listen", addr, "--upstream", upstream, "--admin", "off", "--rules", rules)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return "", nil, err
	}
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		logf.Close()
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, stop, nil
		}
	}
	stop()
	return "", nil, fmt.Errorf("pgguard did not listen on %s (see %s)", addr, logPath)
}

func writeReport(o options, pg *pgtest.Server, results []result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# A migration beside application traffic (%s)\n\n", time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "`make bench-lockqueue` (bench/lockqueue): PostgreSQL %d, pgbench with %d clients running keyed UPDATE + SELECT "+
		"on pgbench_accounts (300,000 rows) for %v; after 2 s a session takes a lock on the table and stays idle in its transaction for %v "+
		"(what it holds: below); 1.5 s later a migration sends `ALTER TABLE pgbench_accounts ADD COLUMN note text` through pgguard. "+
		"Load average when the report was written: %s. A slow application transaction *in flight when the migration's statement ended* "+
		"overlapped the moment the statement held or awaited its lock; the others stalled while nothing of the migration was in the lock queue "+
		"(the runs where the migration was refused never queued at all).\n", pg.Version, o.clients, o.duration, o.hold, loadAverage())
	blocker := ""
	for _, r := range results {
		if r.blocker != blocker {
			blocker = r.blocker
			fmt.Fprintf(&b, "\n## The long transaction holds %s (`--blocker %s`)\n\n", blockerText[blocker], blocker)
			b.WriteString("| pgguard | application connects | app transactions | at 500 ms or more | of them in flight when the migration's statement ended | slowest | app clients aborted | the migration |\n")
			b.WriteString("|---|---|---|---|---|---|---|---|\n")
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %v | %d of %d | %s |\n", r.config, r.route, r.tx, r.slow, r.slowAtRun,
			r.slowest.Round(time.Millisecond), r.aborted, o.clients, strings.ReplaceAll(r.migration, "|", "/"))
	}
	fmt.Print(b.String())
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	name := time.Now().UTC().Format("2006-01-02") + "-lockqueue"
	if o.suffix != "" {
		name += "-" + o.suffix
	}
	path := filepath.Join(o.out, name+".md")
	step("report written to " + path)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// loadAverage is /proc/loadavg's first three fields, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

func firstWords(s string, n int) string {
	w := strings.Fields(s)
	if len(w) > n {
		w = append(w[:n], "...")
	}
	return strings.Join(w, " ")
}

func step(s string) { fmt.Fprintf(os.Stderr, "==> %s\n", s) }
