package peers

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	_ "github.com/pgguard/pgguard/policy/rules" // the rules register themselves with the engine
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
	"github.com/pgguard/pgguard/proxy"
)

const pgxModule = "github.com/jackc/pgx/v5"

// pgxPackages are the packages of pgx's suite that run: all of them (the
// ones without a server skip or test pure code, in a few seconds).
var pgxPackages = []string{"./..."}

// pgxRunTimeout bounds one run of pgx's suite (go test's own -timeout, and
// a kill a little later in case the go command itself hangs).
const pgxRunTimeout = 4 * time.Minute

// pgxRerunTimeout bounds a run of the few tests that ended differently.
const pgxRerunTimeout = 90 * time.Second

// pgxPassword is the password of pgx's test roles (testsetup/postgresql_setup.sql).
const pgxPassword = "secret"

// TestPgxSuite runs pgx v5's own tests, from the module cache at the
// version go.mod requires, twice: straight to a throwaway PostgreSQL and
// through pgguard with every rule on in mode warn. Every test must end the
// same way both times (pass, fail or skip). The tests that fail directly
// too are gaps of this machine, not pgguard's, and are only logged.
func TestPgxSuite(t *testing.T) {
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("skipping pgx v5's own test suite (two runs of about a minute each) in -short mode")
	}
	goBin := goTool(t)
	dir := moduleDir(t, goBin, pgxModule)
	t.Logf("pgx v5 from %s", dir)

	// TLS on, as in pgx's CI: every connection of the suite is encrypted
	// (pgx's default sslmode is prefer), to pgguard and from it.
	pg := pgtest.Must(t, pgtest.Options{TLS: true})
	setupPgx(t, pg)
	addr := startWarnProxy(t, pg)
	directEnv := pgxEnv(pg.Addr(), "pgx_direct", pg.CAFile)
	throughEnv := pgxEnv(addr, "pgx_guard", pg.CAFile)

	direct := runPgxSuite(t, goBin, dir, "directly", directEnv, pgxRunTimeout, nil, pgxPackages)
	through := runPgxSuite(t, goBin, dir, "through pgguard", throughEnv, pgxRunTimeout, nil, pgxPackages)
	logDirect(t, direct)
	divs := diverging(t, direct, through)
	if len(divs) == 0 {
		return
	}
	// A timing-sensitive test of pgx's can fail once on a loaded machine
	// either way; what pgguard breaks, it breaks again. Run the top-level
	// tests of the divergent ones once more both ways: a divergence counts
	// when it comes back.
	again := map[string]bool{}
	if deadline, ok := t.Deadline(); ok && time.Until(deadline) < 2*(pgxRerunTimeout+time.Minute) {
		t.Logf("%d tests ended differently; no time left to run them again before the test binary's -timeout", len(divs))
		for _, dv := range divs {
			again[dv.pkg+" "+dv.test] = true
		}
	} else {
		pkgs, run := rerunArgs(divs)
		t.Logf("%d tests ended differently; running %s again both ways", len(divs), run)
		direct2 := runPgxSuite(t, goBin, dir, "directly (again)", directEnv, pgxRerunTimeout, []string{"-run", run}, pkgs)
		through2 := runPgxSuite(t, goBin, dir, "through pgguard (again)", throughEnv, pgxRerunTimeout, []string{"-run", run}, pkgs)
		for _, dv := range diverging(t, direct2, through2) {
			again[dv.pkg+" "+dv.test] = true
		}
	}
	shown := 0
	for _, dv := range divs {
		if !again[dv.pkg+" "+dv.test] {
			t.Logf("%s %s: %s directly, %s through pgguard the first time; the same both ways when run again (flaky)", dv.pkg, dv.test, dv.d.status, dv.g.status)
			continue
		}
		t.Errorf("%s %s: %s directly, %s through pgguard", dv.pkg, dv.test, dv.d.status, dv.g.status)
		if shown < maxShownDivergences {
			shown++
			t.Logf("--- %s directly:\n%s--- %s through pgguard:\n%s", dv.test, strings.Join(dv.d.output, ""), dv.test, strings.Join(dv.g.output, ""))
		}
	}
}

// rerunArgs are the packages and the -run pattern that run the top-level
// tests of divs again.
func rerunArgs(divs []divergence) (pkgs []string, run string) {
	seenPkg, seenTest := map[string]bool{}, map[string]bool{}
	var tops []string
	for _, dv := range divs {
		if !seenPkg[dv.pkg] {
			seenPkg[dv.pkg] = true
			pkgs = append(pkgs, dv.pkg)
		}
		top, _, _ := strings.Cut(dv.test, "/")
		if !seenTest[top] {
			seenTest[top] = true
			tops = append(tops, regexp.QuoteMeta(top))
		}
	}
	return pkgs, "^(" + strings.Join(tops, "|") + ")$"
}

// goTool is the go command that runs pgx's tests.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no go command on PATH or in GOROOT: %v", err)
	}
	return p
}

// moduleDir is the directory of module in the module cache at the version
// go.mod requires, downloaded if needed. The cache is read-only; go test
// writes only to the build cache, and pgx's tests write only temporary files.
func moduleDir(t *testing.T, goBin, module string) string {
	t.Helper()
	list := func() string {
		out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Dir}}", module).Output()
		if err != nil {
			t.Fatalf("go list -m %s: %v", module, stderrOf(err))
		}
		return strings.TrimSpace(string(out))
	}
	dir := list()
	if dir == "" {
		if out, err := exec.Command(goBin, "mod", "download", module).CombinedOutput(); err != nil {
			t.Fatalf("go mod download %s: %v\n%s", module, err, out)
		}
		dir = list()
	}
	if dir == "" {
		t.Fatalf("go list -m %s: no directory in the module cache", module)
	}
	return dir
}

func stderrOf(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
	}
	return err
}

// setupPgx prepares what pgx's CI prepares (ci/setup_test.bash,
// testsetup/postgresql_setup.sql, testsetup/pg_hba.conf), in two databases
// cloned from one template so that neither run sees what the other left:
// hstore and ltree, the uint64 domain, the roles for each password method
// with pg_hba.conf lines that make them use it, and the role with a tricky
// name that the aclitem tests grant to, and pgx_ssl, which must use TLS.
// pgx_sslcert (a client certificate) and OAuth are not set up: their tests
// skip (see pgxEnv).
func setupPgx(t *testing.T, pg *pgtest.Server) {
	t.Helper()
	if err := pg.Exec(
		"CREATE USER pgx_md5 SUPERUSER",
		"SET password_encryption = md5",
		"ALTER USER pgx_md5 PASSWORD '"+pgxPassword+"'",
		"SET password_encryption = 'scram-sha-256'",
		"CREATE USER pgx_pw SUPERUSER PASSWORD '"+pgxPassword+"'",
		"CREATE USER pgx_scram SUPERUSER PASSWORD '"+pgxPassword+"'",
		"CREATE USER pgx_ssl SUPERUSER PASSWORD '"+pgxPassword+"'",
		`CREATE USER " tricky, ' } "" \ test user " SUPERUSER PASSWORD '`+pgxPassword+`'`,
		"CREATE DATABASE pgx_template",
	); err != nil {
		t.Fatalf("setting up pgx's roles: %v", err)
	}
	tmpl := pg.DSN(pgtest.SuperUser, "pgx_template")
	if err := execOn(tmpl,
		"CREATE EXTENSION hstore",
		"CREATE EXTENSION ltree",
		"CREATE DOMAIN uint64 AS numeric(20,0)",
	); err != nil {
		t.Fatalf("setting up pgx's template database (hstore and ltree come with Debian's postgresql-15): %v", err)
	}
	if err := pg.Exec(
		"CREATE DATABASE pgx_direct TEMPLATE pgx_template STRATEGY FILE_COPY",
		"CREATE DATABASE pgx_guard TEMPLATE pgx_template STRATEGY FILE_COPY",
	); err != nil {
		t.Fatal(err)
	}
	// pgtest trusts every other role over TCP; pgx's roles must log in
	// with the method their name says. The first matching line wins.
	hbaFile := filepath.Join(pg.DataDir, "pg_hba.conf")
	hba, err := os.ReadFile(hbaFile)
	if err != nil {
		t.Fatal(err)
	}
	pgxHBA := "host all pgx_md5 127.0.0.1/32 md5\n" +
		"host all pgx_scram 127.0.0.1/32 scram-sha-256\n" +
		"host all pgx_pw 127.0.0.1/32 password\n" +
		"hostssl all pgx_ssl 127.0.0.1/32 scram-sha-256\n"
	// WriteFile keeps the owner of the existing file (postgres, when root runs the tests).
	if err := os.WriteFile(hbaFile, append([]byte(pgxHBA), hba...), 0o600); err != nil {
		t.Fatal(err)
	}
	var ok bool
	if err := queryRow(pg.DSN(pgtest.SuperUser, "postgres"), "SELECT pg_reload_conf()", &ok); err != nil || !ok {
		t.Fatalf("reloading pg_hba.conf: %v", err)
	}
	// The reload is asynchronous: wait until md5 is asked for.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var method string
		err := queryRow(pg.DSN(pgtest.SuperUser, "postgres"),
			"SELECT auth_method FROM pg_hba_file_rules WHERE 'pgx_md5' = ANY(user_name) LIMIT 1", &method)
		if err == nil && method == "md5" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pg_hba.conf for pgx's roles did not load: %q %v", method, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startWarnProxy starts pgguard in front of pg with mode warn and every
// rule on (those off by default at warn), and returns its address. It
// offers clients TLS with pg's certificate (so one CA file verifies both)
// and speaks TLS to pg, verified.
func startWarnProxy(t *testing.T, pg *pgtest.Server) string {
	t.Helper()
	var rules strings.Builder
	rules.WriteString("mode: warn\nrules:\n")
	for _, r := range policy.Rules() {
		fmt.Fprintf(&rules, "  %s: warn\n", r.ID)
	}
	cfg, err := policy.ParseConfig([]byte(rules.String()), "pgx-warn.yaml")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := policy.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(pg.Dir, "server.crt"), filepath.Join(pg.Dir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(pg.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	srv, err := proxy.New(proxy.Config{
		Targets: []proxy.Target{{
			Name: "pgx", Listen: "127.0.0.1:0", Upstream: pg.Addr(),
			UpstreamTLS:       proxy.TLSVerifyFull,
			UpstreamTLSConfig: &tls.Config{RootCAs: roots, ServerName: pg.Host},
		}},
		ClientTLS: &tls.Config{Certificates: []tls.Certificate{pair}},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Policy:    proxy.NewPolicy(eng),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv.Addrs()[0].String()
}

// pgxEnv is the environment of one run: the caller's without any PG*
// variable, and pgx's PGX_TEST_* connection strings as pgx's CI sets them
// for PostgreSQL 15, pointing at addr, database db, with caFile to verify
// the server. Left unset, so that those tests skip by pgx's own logic both
// times: PGX_TEST_UNIX_SOCKET_CONN_STRING (pgguard listens on TCP only),
// PGX_TEST_SCRAM_PLUS_CONN_STRING (commented out in pgx's CI; channel
// binding cannot cross a proxy that terminates TLS),
// PGX_TEST_TLS_CLIENT_CONN_STRING and PGX_SSL_PASSWORD (client
// certificates), PGX_TEST_OAUTH (PostgreSQL 18), PGX_TEST_PGBOUNCER_CONN_STRING
// and PGX_TEST_CRATEDB_CONN_STRING (other servers).
func pgxEnv(addr, db, caFile string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "GOWORK=") {
			env = append(env, kv)
		}
	}
	host, port, _ := strings.Cut(addr, ":")
	conn := func(user string, extra string) string {
		s := fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s", host, port, user, pgxPassword, db)
		if extra != "" {
			s += " " + extra
		}
		return s
	}
	return append(env,
		"GOWORK=off",
		"PGX_TEST_DATABASE="+conn("pgx_md5", ""),
		"PGX_TEST_TCP_CONN_STRING="+conn("pgx_md5", ""),
		"PGX_TEST_MD5_PASSWORD_CONN_STRING="+conn("pgx_md5", ""),
		"PGX_TEST_SCRAM_PASSWORD_CONN_STRING="+conn("pgx_scram", "channel_binding=disable"),
		"PGX_TEST_PLAIN_PASSWORD_CONN_STRING="+conn("pgx_pw", ""),
		// As pgx's CI has it, but host 127.0.0.1: the server listens on IPv4 only.
		"PGX_TEST_TLS_CONN_STRING="+conn("pgx_ssl", "sslmode=verify-full sslrootcert="+caFile+" channel_binding=disable"),
	)
}

// status is how one test ended: pass, fail, skip, or "unfinished" when
// the package died (panic, timeout) while it ran.
type status string

// testRun is one test's end and its output.
type testRun struct {
	status status
	output []string
}

// suiteRun is one run of pgx's suite: each test's end by package, and the
// packages that failed as a whole (build errors, panics, timeouts).
type suiteRun struct {
	name     string
	tests    map[string]map[string]*testRun // package → test → run
	pkgFail  map[string][]string            // package → its output, when it failed outside any test
	duration time.Duration
}

// testEvent is a line of go test -json (cmd/test2json).
type testEvent struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// tempDirs matches a directory of t.TempDir (the test's name and a random
// number of many digits, then a serial number of three) in a test's name, which differs from run to
// run: pgconn's TestParseConfigSSLCertMode names subtests after a file in one.
var tempDirs = regexp.MustCompile(`(/[A-Za-z_]\w*?)\d{6,}/\d{3,}/`)

// maxOutputLines bounds what is kept of one test's output.
const maxOutputLines = 200

// runPgxSuite runs pgx's packages pkgs with go test -json, the extra flags,
// go test's -timeout and the environment env, and logs a line per package as it finishes.
func runPgxSuite(t *testing.T, goBin, dir, name string, env []string, timeout time.Duration, extra, pkgs []string) *suiteRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Minute)
	defer cancel()
	args := []string{"test", "-count=1", "-json", "-timeout", timeout.String()}
	args = append(append(args, extra...), pkgs...)
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	run := &suiteRun{name: name, tests: map[string]map[string]*testRun{}, pkgFail: map[string][]string{}}
	t.Logf("pgx's suite %s: go %s", name, strings.Join(args, " "))
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pkgOut := map[string][]string{}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev testEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Package == "" {
			continue // the go command's own lines (build output goes to stderr)
		}
		ev.Test = tempDirs.ReplaceAllString(ev.Test, "${1}TMP/")
		if ev.Test == "" {
			run.packageEvent(t, ev, pkgOut)
			continue
		}
		tests := run.tests[ev.Package]
		if tests == nil {
			tests = map[string]*testRun{}
			run.tests[ev.Package] = tests
		}
		tr := tests[ev.Test]
		if tr == nil {
			tr = &testRun{status: "unfinished"}
			tests[ev.Test] = tr
		}
		switch ev.Action {
		case "output":
			if len(tr.output) < maxOutputLines {
				tr.output = append(tr.output, ev.Output)
			}
		case "pass", "fail", "skip":
			tr.status = status(ev.Action)
		}
	}
	err = cmd.Wait()
	run.duration = time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("pgx's suite %s did not finish within %v\n%s", name, timeout+time.Minute, stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running pgx's suite %s: %v", name, err)
	}
	if len(run.tests) == 0 {
		t.Fatalf("pgx's suite %s ran no tests: %v\n%s", name, err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("pgx's suite %s, go's stderr:\n%s", name, stderr.String())
	}
	p, f, s := run.counts("")
	t.Logf("pgx's suite %s: %d passed, %d failed, %d skipped in %v", name, p, f, s, run.duration.Round(time.Second))
	return run
}

// packageEvent records a package's output and logs its end.
func (r *suiteRun) packageEvent(t *testing.T, ev testEvent, pkgOut map[string][]string) {
	t.Helper()
	switch ev.Action {
	case "output":
		if len(pkgOut[ev.Package]) < maxOutputLines {
			pkgOut[ev.Package] = append(pkgOut[ev.Package], ev.Output)
		}
	case "pass", "fail", "skip":
		p, f, s := r.counts(ev.Package)
		t.Logf("  %s %s %s in %.1fs: %d passed, %d failed, %d skipped", r.name, ev.Action, ev.Package, ev.Elapsed, p, f, s)
		if ev.Action == "fail" && f == 0 {
			r.pkgFail[ev.Package] = pkgOut[ev.Package]
		}
	}
}

// counts counts the tests of pkg (every package when "") by how they ended;
// an unfinished test counts as failed.
func (r *suiteRun) counts(pkg string) (pass, fail, skip int) {
	for p, tests := range r.tests {
		if pkg != "" && p != pkg {
			continue
		}
		for _, tr := range tests {
			switch tr.status {
			case "pass":
				pass++
			case "skip":
				skip++
			default:
				fail++
			}
		}
	}
	return
}

// failed lists "package test" of the tests that did not pass or skip.
func (r *suiteRun) failed() []string {
	var out []string
	for pkg, tests := range r.tests {
		for name, tr := range tests {
			if tr.status != "pass" && tr.status != "skip" {
				out = append(out, pkg+" "+name+" ("+string(tr.status)+")")
			}
		}
	}
	sort.Strings(out)
	return out
}

// skipReasons groups the skipped top-level tests by the reason they gave.
func (r *suiteRun) skipReasons() map[string][]string {
	out := map[string][]string{}
	for pkg, tests := range r.tests {
		for name, tr := range tests {
			if tr.status != "skip" {
				continue
			}
			reason := "(no reason given)"
			for _, line := range tr.output {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "=== ") || strings.HasPrefix(line, "--- SKIP") {
					continue
				}
				// "conn_test.go:123: reason": drop the position.
				if _, rest, ok := strings.Cut(line, ": "); ok && strings.Contains(line[:len(line)-len(rest)], ".go:") {
					line = rest
				}
				reason = line
				break
			}
			short := strings.TrimPrefix(strings.TrimPrefix(pkg, pgxModule), "/")
			if short == "" {
				short = "pgx"
			}
			out[reason] = append(out[reason], short+" "+name)
		}
	}
	for _, names := range out {
		sort.Strings(names)
	}
	return out
}

// maxShownDivergences bounds the divergent tests whose output is printed.
const maxShownDivergences = 5

// logDirect logs the tests of pgx's that fail or skip directly.
func logDirect(t *testing.T, direct *suiteRun) {
	t.Helper()
	if fails := direct.failed(); len(fails) > 0 {
		t.Logf("%d tests of pgx's fail directly too (what this machine lacks, not pgguard):\n  %s", len(fails), strings.Join(fails, "\n  "))
	}
	reasons := direct.skipReasons()
	var keys []string
	for k := range reasons {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %s (%d): %s", k, len(reasons[k]), strings.Join(reasons[k], ", "))
	}
	t.Logf("tests of pgx's that skip directly, by reason:%s", b.String())
}

// divergence is a test of pgx's that ended differently through pgguard.
type divergence struct {
	pkg, test string
	d, g      *testRun // directly, through pgguard
}

// diverging returns the tests of pgx's that ended differently through
// pgguard than directly, and fails the test when the counts of a package
// differ or a package failed as a whole through pgguard only.
func diverging(t *testing.T, direct, through *suiteRun) []divergence {
	t.Helper()

	pkgs := map[string]bool{}
	for pkg := range direct.tests {
		pkgs[pkg] = true
	}
	for pkg := range through.tests {
		pkgs[pkg] = true
	}
	var sorted []string
	for pkg := range pkgs {
		sorted = append(sorted, pkg)
	}
	sort.Strings(sorted)

	var divs []divergence
	for _, pkg := range sorted {
		names := map[string]bool{}
		for n := range direct.tests[pkg] {
			names[n] = true
		}
		for n := range through.tests[pkg] {
			names[n] = true
		}
		var sortedNames []string
		for n := range names {
			sortedNames = append(sortedNames, n)
		}
		sort.Strings(sortedNames)
		for _, n := range sortedNames {
			d, g := direct.tests[pkg][n], through.tests[pkg][n]
			if d == nil {
				d = &testRun{status: "not run"}
			}
			if g == nil {
				g = &testRun{status: "not run"}
			}
			if d.status != g.status {
				divs = append(divs, divergence{pkg, n, d, g})
			}
		}
		dp, df, ds := direct.counts(pkg)
		gp, gf, gs := through.counts(pkg)
		if dp != gp || df != gf || ds != gs {
			t.Logf("%s: directly %d passed, %d failed, %d skipped; through pgguard %d passed, %d failed, %d skipped",
				pkg, dp, df, ds, gp, gf, gs)
		}
	}
	for pkg, out := range through.pkgFail {
		if _, ok := direct.pkgFail[pkg]; !ok {
			t.Errorf("%s failed as a whole through pgguard only:\n%s", pkg, strings.Join(out, ""))
		}
	}
	return divs
}

// execOn runs statements on a fresh connection to dsn.
func execOn(dsn string, sql ...string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, q := range sql {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// queryRow scans the one row of q on a fresh connection to dsn.
func queryRow(dsn, q string, dest ...any) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, q).Scan(dest...)
}
