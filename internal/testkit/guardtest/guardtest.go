// Package guardtest sets up what the suites that run real clients through
// pgguard share (internal/suites/drivers, internal/suites/tools): a throwaway PostgreSQL,
// a template database with a large and a small table, and pgguard with the
// built-in policy in front of it: one target judged with each database's
// own sizes, and one (UATAddr) with the template's, as a UAT target with
// sizes_file judges a small copy with production's sizes (CloneSmall).
package guardtest

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	_ "github.com/pgguard/pgguard/policy/rules" // the rules register themselves with the engine
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgguard/pgguard/internal/observe"
	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
	"github.com/pgguard/pgguard/proxy"
)

// BigRows puts "big" well above the default policy's size threshold (10000
// rows), so that DDL on it is rewritten or refused; "small" stays below it.
const BigRows = 300000

// RaiseParallel lets n tests of the package run at once unless -parallel
// was given: these suites mostly wait on subprocesses and index builds, and
// go test's default (the number of cores, 2 here) would make a package take
// the sum of its tests' times. Call it after flag.Parse.
func RaiseParallel(n int) {
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		flag.Set("test.parallel", strconv.Itoa(n))
	}
}

// Env is a running PostgreSQL with a seeded template and pgguard in front.
type Env struct {
	PG        *pgtest.Server
	ProxyAddr string // host:port of pgguard
	// UATAddr is a second target of the same pgguard whose sessions are
	// judged with the template's sizes ("production": big has BigRows
	// rows), as a target with sizes_file: an export of the template taken
	// at startup. Point it at a CloneSmall copy to run a migration in a
	// small UAT that production's sizes judge.
	UATAddr  string
	srv      *proxy.Server
	template string
	audit    pgtest.SyncBuffer // pgguard's audit log
}

// Start starts PostgreSQL with opts, seeds the template database template
// and starts pgguard (target name target) in front of it. Without
// PostgreSQL it returns (nil, nil) outside CI, so that the suite's tests
// skip, and an error under CI.
func Start(suite, target, template string, opts pgtest.Options) (*Env, error) {
	if _, err := pgtest.BinDir(); err != nil {
		if os.Getenv("CI") != "" {
			return nil, fmt.Errorf("CI needs a real PostgreSQL: %w", err)
		}
		fmt.Fprintf(os.Stderr, "skipping %s: %v\n", suite, err)
		return nil, nil
	}
	pg, err := pgtest.Start(opts)
	if err != nil {
		return nil, fmt.Errorf("starting PostgreSQL: %w", err)
	}
	e := &Env{PG: pg, template: template}
	if err := seed(pg, template); err != nil {
		pg.Close()
		return nil, fmt.Errorf("seeding the template database: %w", err)
	}
	sizes, err := exportTemplate(pg, template)
	if err != nil {
		pg.Close()
		return nil, fmt.Errorf("exporting the template's sizes: %w", err)
	}
	if e.srv, err = startProxy(pg, target, sizes, observe.NewAuditLog(&e.audit)); err != nil {
		pg.Close()
		return nil, fmt.Errorf("starting pgguard: %w", err)
	}
	e.ProxyAddr = e.srv.Addrs()[0].String()
	e.UATAddr = e.srv.Addrs()[1].String()
	return e, nil
}

// Close stops pgguard and PostgreSQL.
func (e *Env) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.srv.Shutdown(ctx)
	e.PG.Close()
}

// seed builds the template every test's database is copied from: "big" with
// BigRows rows and "small" with a few, analyzed (the proxy sizes tables
// from the catalog, which a copy keeps). Each test gets its own copy, so
// that one's open transaction does not make another's CREATE INDEX
// CONCURRENTLY wait (it waits for every older snapshot in its database).
func seed(pg *pgtest.Server, template string) error {
	if err := pg.Exec("CREATE DATABASE " + template); err != nil {
		return err
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN(pgtest.SuperUser, template))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		"CREATE TABLE big (id bigint PRIMARY KEY, account int NOT NULL, note text)",
		"INSERT INTO big SELECT g, g % 1000, md5(g::text) FROM generate_series(1, " + strconv.Itoa(BigRows) + ") g",
		"CREATE TABLE small (id bigint PRIMARY KEY, v text)",
		"INSERT INTO small SELECT g, 'v' || g FROM generate_series(1, 10) g",
		"ANALYZE",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// exportTemplate reads the template's sizes once, as pgguard sizes export
// would (a live source would connect to the template every refresh, and
// CREATE DATABASE ... TEMPLATE fails while anyone is connected to it).
func exportTemplate(pg *pgtest.Server, template string) (*pgcatalog.Sizes, error) {
	ctx := context.Background()
	conn, err := pgcatalog.Connect(ctx, pgcatalog.ConnSpec{Upstream: pg.Addr(), User: pgtest.SuperUser, Password: pgtest.Password, Database: template, ConnectTimeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	f, err := pgcatalog.Export(&pgcatalog.ConnQuerier{Ctx: ctx, Conn: conn}, time.Now())
	if err != nil {
		return nil, err
	}
	return pgcatalog.NewSizes(f, "production"), nil
}

// startProxy starts pgguard with the built-in policy in front of pg, with
// the targets target and target-uat (judged with sizes).
func startProxy(pg *pgtest.Server, target string, sizes *pgcatalog.Sizes, obs observe.Observer) (*proxy.Server, error) {
	cfg, err := policy.DefaultConfig()
	if err != nil {
		return nil, err
	}
	eng, err := policy.NewEngine(cfg)
	if err != nil {
		return nil, err
	}
	// Two targets cannot both listen on port 0: the configuration names
	// each address once.
	port, err := pgtest.FreePort()
	if err != nil {
		return nil, err
	}
	uat := "127.0.0.1:" + strconv.Itoa(port)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	srv, err := proxy.New(proxy.Config{
		Targets: []proxy.Target{
			{Name: target, Listen: "127.0.0.1:0", Upstream: pg.Addr()},
			{Name: target + "-uat", Listen: uat, Upstream: pg.Addr(), Sizes: pgcatalog.StaticSizes{S: sizes}},
		},
		Logger:   logger,
		Policy:   proxy.NewPolicy(eng),
		Observer: obs,
	})
	if err != nil {
		return nil, err
	}
	if err := srv.Listen(); err != nil {
		return nil, err
	}
	go srv.Serve()
	return srv, nil
}

// Clone creates database name as a copy of the template and returns name.
func (e *Env) Clone(t testing.TB, name string) string {
	t.Helper()
	sql := "CREATE DATABASE " + name + " TEMPLATE " + e.template
	if e.PG.Version >= 150000 {
		// PostgreSQL 15 copies through the WAL by default: 2s for the
		// template instead of 0.3s.
		sql += " STRATEGY FILE_COPY"
	}
	if err := e.PG.Exec(sql); err != nil {
		t.Fatal(err)
	}
	return name
}

// CloneSmall creates database name as a copy of the template whose big
// holds only 10 rows, as a UAT database does, and returns name.
func (e *Env) CloneSmall(t testing.TB, name string) string {
	t.Helper()
	e.Clone(t, name)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.PG.DSN(pgtest.SuperUser, name))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{"TRUNCATE big", "INSERT INTO big SELECT g, g % 1000, md5(g::text) FROM generate_series(1, 10) g", "ANALYZE big"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return name
}

// Need skips a test when no PostgreSQL was found outside CI (e is nil
// then; under CI the suite's TestMain already failed).
func (e *Env) Need(t testing.TB) {
	t.Helper()
	if e == nil {
		t.Skip("skipping: needs a real PostgreSQL (apt-get install postgresql, or set PGGUARD_PG_BINDIR)")
	}
}

// Missing fails (under CI) or skips (elsewhere) a test whose client or
// tool is not installed, naming what to install.
func Missing(t testing.TB, what string, err error, install string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI needs %s (%s): %v", what, install, err)
	}
	t.Skipf("skipping: %s is not installed (%s): %v", what, install, err)
}

// Audit returns the lines of pgguard's audit log about database, in the
// order pgguard wrote them.
func (e *Env) Audit(t testing.TB, database string) []observe.AuditRecord {
	t.Helper()
	var out []observe.AuditRecord
	for _, line := range strings.Split(e.audit.String(), "\n") {
		if line == "" {
			continue
		}
		var rec observe.AuditRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit log line %q: %v", line, err)
		}
		if rec.Database == database {
			out = append(out, rec)
		}
	}
	return out
}
