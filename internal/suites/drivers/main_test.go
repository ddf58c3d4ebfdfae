package drivers

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgguard/pgguard/internal/testkit/guardtest"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

const bigRows = guardtest.BigRows

// procTimeout bounds every driver subprocess: a desynchronised proxy often
// makes a driver wait forever for a ReadyForQuery that never comes, and that
// must fail the test, not stall the run. A scenario takes a second or two
// (the concurrent index builds dominate); 30s leaves room on a loaded 2-core
// machine while a few hangs still keep the package within ~90s.
const procTimeout = 30 * time.Second

var (
	guard     *guardtest.Env
	pg        *pgtest.Server
	proxyAddr string // host:port of pgguard in front of pg
)

func TestMain(m *testing.M) {
	flag.Parse() // for testing.Verbose in guardtest.Start
	guardtest.RaiseParallel(16)
	os.Exit(run(m))
}

func run(m *testing.M) int {
	env, err := guardtest.Start("driver tests", "drivers", "guard_template", pgtest.Options{})
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

// database gives a driver its own copy of the template and returns its name.
func database(t *testing.T, driver string) string {
	t.Helper()
	needPG(t)
	return guard.Clone(t, "guard_"+driver)
}

// clientEnv is the environment of a driver subprocess: libpq's variables
// (read by psql, psycopg2 and node-postgres; the Java program reads them
// too) pointing at pgguard, and no PG* variable of the caller's.
func clientEnv(db string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	host, port, _ := strings.Cut(proxyAddr, ":")
	return append(env, "PGHOST="+host, "PGPORT="+port, "PGDATABASE="+db,
		"PGUSER="+pgtest.SuperUser, "PGPASSWORD="+pgtest.Password, "PGSSLMODE=disable",
		"PGAPPNAME=pgguard-drivers-test")
}

// result is what a driver subprocess did.
type result struct {
	stdout, stderr string
	code           int // exit code; -1 when killed at the timeout
	timedOut       bool
}

func (r result) String() string {
	s := fmt.Sprintf("exit code %d", r.code)
	if r.timedOut {
		s = fmt.Sprintf("killed after %v (hung)", procTimeout)
	}
	return fmt.Sprintf("%s\n--- stdout:\n%s--- stderr:\n%s", s, r.stdout, r.stderr)
}

// runProc runs a driver program with procTimeout.
func runProc(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	// After the kill at the timeout, do not wait for output pipes that a
	// child of the program (a JVM's, say) might still hold open.
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
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

// wantPass checks the convention of the driver programs under testdata: each
// runs one scenario, checks every result itself, prints what it does, and
// ends with the line "PASS" and exit code 0; on a wrong result it prints
// "FAIL: ..." and exits 1. Requiring the PASS line catches a program that
// stopped early without noticing.
func wantPass(t *testing.T, r result) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || lines[len(lines)-1] != "PASS" {
		t.Fatalf("driver program did not pass: %s", r)
	}
}

// scenario is one run of a driver program. Every driver has at least
// these, each followed by the checked queries:
//
//   - allowed: CREATE TABLE, CREATE INDEX on small: relayed as sent; a CREATE
//     TABLE with an int primary key is warned about (prefer-bigint) and runs.
//   - rewritten: CREATE INDEX on big outside a transaction: runs
//     CONCURRENTLY, with a NOTICE; the index must exist and be valid.
//   - refused: ALTER TABLE big ALTER COLUMN account TYPE bigint, and CREATE
//     INDEX on big inside a transaction: 42501 "pgguard: <rule>: ...", and
//     nothing changes.
//   - multi: "CREATE TABLE IF NOT EXISTS t_multi (a int); SELECT 1" as one
//     string: the driver gets both results.
//
// Each is its own subprocess so that a hang or a desync in one does not hide
// the others.
type scenario struct {
	name string
	// present must exist afterwards (indexes valid); absent must not.
	present, absent []string
}

// runScenarios runs each scenario as a subtest, one after the other (they
// share the driver's database), with run starting the driver program.
func runScenarios(t *testing.T, db string, scs []scenario, run func(t *testing.T, name string) result) {
	t.Helper()
	for _, sc := range scs {
		t.Run(sc.name, func(t *testing.T) {
			r := run(t, sc.name)
			checkState(t, db, sc.present, sc.absent)
			wantPass(t, r)
		})
	}
}

// direct opens a connection to db that bypasses pgguard, to check what the
// drivers did.
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

// checkState checks the database after a scenario: the objects it must have
// made exist (indexes valid), the refused ones do not, and big is unchanged.
// It runs even when the driver program failed, so that a report says both
// what the driver saw and what the server did.
func checkState(t *testing.T, db string, present, absent []string) {
	t.Helper()
	ctx := context.Background()
	conn := direct(t, db)
	for _, name := range present {
		var kind string
		var valid *bool
		err := conn.QueryRow(ctx, `SELECT c.relkind::text, i.indisvalid FROM pg_class c
			LEFT JOIN pg_index i ON i.indexrelid = c.oid WHERE c.oid = to_regclass($1)`, name).Scan(&kind, &valid)
		if errors.Is(err, pgx.ErrNoRows) {
			t.Errorf("%s does not exist", name)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if valid != nil && !*valid {
			t.Errorf("index %s is INVALID", name)
		}
	}
	for _, name := range absent {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("%s exists, but the statement creating it was refused", name)
		}
	}
	var typ string
	var n int64
	if err := conn.QueryRow(ctx, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'account'").Scan(&typ); err != nil {
		t.Fatal(err)
	}
	if typ != "integer" {
		t.Errorf("big.account is %s, want integer: a refused ALTER ... TYPE ran", typ)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM big").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != bigRows {
		t.Errorf("big has %d rows, want %d", n, bigRows)
	}
}
