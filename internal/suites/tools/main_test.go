package tools

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgguard/pgguard/internal/testkit/guardtest"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

const bigRows = guardtest.BigRows

// procTimeout bounds every tool run. A run takes one to three seconds (a
// JVM or Django start, a concurrent index build on big); a hung proxy
// makes a tool wait forever, which must fail the test, not stall the run.
const procTimeout = 60 * time.Second

var (
	guard     *guardtest.Env
	pg        *pgtest.Server
	proxyAddr string   // host:port of pgguard in front of pg
	serverLog *os.File // the server's log: every statement (logPrefix)
)

func TestMain(m *testing.M) {
	flag.Parse()
	guardtest.RaiseParallel(8)
	os.Exit(run(m))
}

func run(m *testing.M) int {
	logDir, err := os.MkdirTemp("", "pgguard-tools-log")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(logDir)
	serverLog, err = os.Create(filepath.Join(logDir, "postgresql.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer serverLog.Close()
	// Every statement the tools send, with its database and
	// application_name, for the checks of what pgguard can tell about the
	// tool behind a session (see sense_test.go).
	env, err := guardtest.Start("migration-tool tests", "tools", "tools_template", pgtest.Options{Log: serverLog, Settings: map[string]string{
		"log_statement":   "all",
		"log_line_prefix": "'" + logPrefix + "'",
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if env == nil {
		return m.Run() // every test skips through needPG
	}
	defer env.Close()
	pg, proxyAddr, guard = env.PG, env.ProxyAddr, env
	return m.Run()
}

// needPG skips a test when no PostgreSQL was found outside CI.
func needPG(t *testing.T) {
	t.Helper()
	guard.Need(t)
}

// missing fails (under CI) or skips (elsewhere) a test whose program is
// not installed.
func missing(t *testing.T, what string, err error, install string) {
	t.Helper()
	guardtest.Missing(t, what, err, install)
}

// need returns the absolute path of a file the test needs, or fails/skips
// through missing.
func need(t *testing.T, path, what, install string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err == nil {
		_, err = os.Stat(abs)
	}
	if err != nil {
		missing(t, what, err, install)
	}
	return abs
}

// lookPath finds a program on PATH, or fails/skips through missing.
func lookPath(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, name, err, install)
	}
	return p
}

var dbSeq atomic.Int64

// database gives a run its own copy of the template, dropped when the test
// ends, and returns its name.
func database(t *testing.T, tool string) string {
	t.Helper()
	needPG(t)
	name := guard.Clone(t, fmt.Sprintf("t_%s_%d", strings.NewReplacer("-", "_").Replace(tool), dbSeq.Add(1)))
	t.Cleanup(func() {
		if !t.Failed() {
			pg.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		}
	})
	return name
}

// uatDatabases holds the databases smallUAT made: url and jdbcURL reach
// them through guardtest's UAT target.
var uatDatabases sync.Map

// smallUAT gives a run its own copy of the template whose big holds 10
// rows, reached (url, jdbcURL) through the target that judges with the
// template's sizes (big's 300,000 rows): a small UAT judged with
// production's sizes, as docs/environments.md sets it up.
func smallUAT(t *testing.T, tool string) string {
	t.Helper()
	needPG(t)
	name := guard.CloneSmall(t, fmt.Sprintf("t_uat_%s_%d", strings.NewReplacer("-", "_").Replace(tool), dbSeq.Add(1)))
	uatDatabases.Store(name, true)
	t.Cleanup(func() {
		if !t.Failed() {
			pg.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		}
	})
	return name
}

// addrOf is pgguard's address that db is reached through.
func addrOf(db string) string {
	if _, ok := uatDatabases.Load(db); ok {
		return guard.UATAddr
	}
	return proxyAddr
}

// url is the connection URL of db through pgguard.
func url(db string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgtest.SuperUser, pgtest.Password, addrOf(db), db)
}

// baseEnv is the environment of a tool: the caller's without PG* and
// DATABASE_URL, plus extra.
func baseEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "DATABASE_URL=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// result is what a tool run did.
type result struct {
	cmd      string
	out      string // stdout and stderr, interleaved
	code     int    // exit code; -1 when killed at the timeout
	timedOut bool
	took     time.Duration
}

func (r result) String() string {
	s := fmt.Sprintf("exit code %d after %v", r.code, r.took.Round(time.Millisecond))
	if r.timedOut {
		s = fmt.Sprintf("killed after %v (hung)", procTimeout)
	}
	return fmt.Sprintf("%s: %s\n%s", r.cmd, s, r.out)
}

// runTool runs a tool with procTimeout in dir.
func runTool(t *testing.T, dir string, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.WaitDelay = 2 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	r := result{cmd: filepath.Base(name) + " " + strings.Join(args, " "), out: out.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.code, r.timedOut = -1, true
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("running %s: %v", name, err)
	}
	return r
}

// direct opens a connection to db that bypasses pgguard, to check what the
// tools did.
func direct(t *testing.T, db string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN(pgtest.SuperUser, db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// strings returns the first column of a query's rows ("" for NULL), or nil
// when the query fails because its table does not exist (a ledger not yet
// created).
func column(t *testing.T, conn *pgx.Conn, sql string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v any
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v == nil {
			out = append(out, "")
		} else {
			out = append(out, fmt.Sprint(v))
		}
	}
	if err := rows.Err(); err != nil {
		var pgErr interface{ SQLState() string }
		if errors.As(err, &pgErr) && pgErr.SQLState() == "42P01" {
			return nil
		}
		t.Fatal(err)
	}
	return out
}
