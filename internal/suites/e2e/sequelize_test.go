package e2e

import (
	"context"
	"fmt"
	_ "github.com/pgguard/pgguard/policy/rules" // the rules register themselves with the engine
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
	"github.com/pgguard/pgguard/proxy"
)

const appDir = "testdata/sequelize"

// seedSQL builds the application database: tables with a few hundred
// thousand rows, named the way Sequelize names them.
var seedSQL = []string{
	`CREATE TYPE "enum_JournalLines_kind" AS ENUM ('debit', 'credit')`,
	`CREATE TABLE "Accounts" (id bigserial PRIMARY KEY, name text NOT NULL,
		"createdAt" timestamptz NOT NULL DEFAULT now(), "updatedAt" timestamptz NOT NULL DEFAULT now())`,
	`INSERT INTO "Accounts" (name) SELECT 'account ' || g FROM generate_series(1, 300000) g`,
	`CREATE TABLE "JournalLines" (id bigserial PRIMARY KEY, "accountId" int NOT NULL, amount numeric(18,2) NOT NULL,
		kind "enum_JournalLines_kind" NOT NULL, memo text,
		"createdAt" timestamptz NOT NULL DEFAULT now(), "updatedAt" timestamptz NOT NULL DEFAULT now())`,
	`INSERT INTO "JournalLines" ("accountId", amount, kind, memo)
		SELECT 1 + g % 300000, g / 100.0, CASE WHEN g % 2 = 0 THEN 'debit' ELSE 'credit' END::"enum_JournalLines_kind",
		CASE WHEN g % 10 = 0 THEN NULL ELSE 'line ' || g END FROM generate_series(1, 300000) g`,
	`CREATE TABLE "Currencies" (code text PRIMARY KEY, name text NOT NULL)`,
	`ANALYZE`,
}

type env struct {
	pg    *pgtest.Server
	proxy string // host:port of pgguard
	url   string // DATABASE_URL through pgguard
}

func setup(t *testing.T) *env {
	t.Helper()
	bin := filepath.Join(appDir, "node_modules", ".bin", "sequelize-cli")
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI needs the npm packages: run `make test` (it runs npm ci in %s): %v", appDir, err)
		}
		t.Skipf("skipping: sequelize-cli is not installed; run `npm ci --prefix %s` (make test does)", appDir)
	}
	pg := pgtest.Must(t, pgtest.Options{})
	// The migrating role owns the database and its tables, as in production.
	if err := pg.Exec("CREATE DATABASE app OWNER " + pgtest.SCRAMUser); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN(pgtest.SCRAMUser, "app"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range seedSQL {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	cfg, err := policy.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := policy.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	srv, err := proxy.New(proxy.Config{
		Targets: []proxy.Target{{Name: "e2e", Listen: "127.0.0.1:0", Upstream: pg.Addr()}},
		Logger:  logger,
		Policy:  proxy.NewPolicy(eng),
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
	addr := srv.Addrs()[0].String()
	return &env{pg: pg, proxy: addr,
		url: fmt.Sprintf("postgres://%s:%s@%s/app", pgtest.SCRAMUser, pgtest.Password, addr)}
}

// cli runs sequelize-cli through pgguard and returns its output and exit code.
func (e *env) cli(t *testing.T, args ...string) (string, int) {
	t.Helper()
	args = append(args, "--config", "config.js", "--env", "test")
	cmd := exec.Command(filepath.Join("node_modules", ".bin", "sequelize-cli"), args...)
	cmd.Dir = appDir
	cmd.Env = append(os.Environ(), "DATABASE_URL="+e.url, "NODE_ENV=test")
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("sequelize-cli: %v", err)
	}
	return string(out), code
}

// direct runs a query on the database itself, not through pgguard.
func (e *env) direct(t *testing.T, sql string, args ...any) pgx.Rows {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.pg.DSN(pgtest.SuperUser, "app"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func (e *env) scalar(t *testing.T, sql string, args ...any) string {
	t.Helper()
	rows := e.direct(t, sql, args...)
	defer rows.Close()
	if !rows.Next() {
		return ""
	}
	var v any
	rows.Scan(&v)
	return fmt.Sprint(v)
}

func (e *env) meta(t *testing.T) []string {
	t.Helper()
	if e.scalar(t, `SELECT to_regclass('"SequelizeMeta"') IS NULL`) == "true" {
		return nil
	}
	rows := e.direct(t, `SELECT name FROM "SequelizeMeta" ORDER BY name`)
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	return names
}

func TestSequelizeEverydayMigrationsPass(t *testing.T) {
	e := setup(t)
	out, code := e.cli(t, "db:migrate", "--migrations-path", "ok")
	if code != 0 || strings.Contains(out, "pgguard") {
		t.Fatalf("db:migrate exit %d:\n%s", code, out)
	}
	files, _ := filepath.Glob(filepath.Join(appDir, "ok", "*.js"))
	if got := e.meta(t); len(got) != len(files) {
		t.Fatalf("SequelizeMeta = %v, want all %d migrations", got, len(files))
	}
	for i := 0; i < 2; i++ { // the upsert seeder is re-runnable
		out, code = e.cli(t, "db:seed:all", "--seeders-path", "seeders")
		if code != 0 {
			t.Fatalf("db:seed:all exit %d:\n%s", code, out)
		}
	}
	if n := e.scalar(t, `SELECT count(*) FROM "Currencies"`); n != "2" {
		t.Fatalf("currencies: %s", n)
	}
	if v := e.scalar(t, `SELECT indisvalid FROM pg_index WHERE indexrelid = 'payees_account_id'::regclass`); v != "true" {
		t.Fatalf("payees index valid = %s", v)
	}
}

// addIndex on the big table is rewritten to CONCURRENTLY: the migration
// succeeds, the index is valid, and a writer running meanwhile was never
// blocked for the length of the build.
func TestSequelizeAddIndexOnBigTableRewritten(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	writer, err := pgx.Connect(ctx, e.pg.DSN(pgtest.SuperUser, "app"))
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close(ctx)
	w := pgtest.StartWriter(writer, `UPDATE "JournalLines" SET "updatedAt" = now() WHERE id = $1`, func(i int) any { return 1 + i%5000 })
	start := time.Now()
	out, code := e.cli(t, "db:migrate", "--migrations-path", "bad/add-index-big")
	took := time.Since(start)
	maxWait, _, werr := w.Stop()
	if werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	if code != 0 {
		t.Fatalf("db:migrate exit %d:\n%s", code, out)
	}
	if v := e.scalar(t, `SELECT indexdef FROM pg_indexes WHERE indexname = 'journal_lines_account_id'`); !strings.Contains(v, `("accountId")`) {
		t.Fatalf("pg_indexes: %q", v)
	}
	if v := e.scalar(t, `SELECT indisvalid FROM pg_index WHERE indexrelid = 'journal_lines_account_id'::regclass`); v != "true" {
		t.Fatalf("index valid = %s", v)
	}
	if maxWait > 200*time.Millisecond {
		t.Fatalf("a writer waited %v during the %v migration", maxWait, took)
	}
}

// Each of these migrations must be refused: sequelize-cli fails with
// pgguard's message, and SequelizeMeta records nothing for it.
func TestSequelizeUnsafeMigrationsRefused(t *testing.T) {
	e := setup(t)
	cases := []struct {
		dir, rule string
		unchanged string // a query whose answer must stay "0" or as before
	}{
		{"add-index-in-transaction", "create-index", `SELECT count(*) FROM information_schema.columns WHERE table_name = 'Accounts' AND column_name = 'nickname'`},
		{"not-null", "set-not-null", `SELECT count(*) FROM information_schema.columns WHERE table_name = 'JournalLines' AND column_name = 'memo' AND is_nullable = 'NO'`},
		{"int-to-bigint", "alter-column-type", `SELECT count(*) FROM information_schema.columns WHERE table_name = 'JournalLines' AND column_name = 'accountId' AND data_type = 'bigint'`},
		{"uuid-default", "add-column-volatile-default", `SELECT count(*) FROM information_schema.columns WHERE table_name = 'JournalLines' AND column_name = 'reference'`},
		{"rename-column", "rename-column", `SELECT count(*) FROM information_schema.columns WHERE table_name = 'JournalLines' AND column_name = 'description'`},
		{"remove-column", "drop-column", `SELECT count(*) FROM information_schema.columns WHERE table_name = 'JournalLines' AND column_name = 'memo' AND false`},
		{"foreign-key", "add-foreign-key", `SELECT count(*) FROM pg_constraint WHERE conname = 'journal_lines_account_fk'`},
	}
	for _, c := range cases {
		t.Run(c.dir, func(t *testing.T) {
			before := e.meta(t)
			out, code := e.cli(t, "db:migrate", "--migrations-path", filepath.Join("bad", c.dir))
			if code == 0 {
				t.Fatalf("db:migrate succeeded:\n%s", out)
			}
			if !strings.Contains(out, "pgguard: "+c.rule+":") {
				t.Fatalf("sequelize-cli did not print pgguard's refusal naming %s:\n%s", c.rule, out)
			}
			// sequelize-cli prints the message and the detail, not the hint:
			// the recipe must be in the detail too.
			if !strings.Contains(out, "Safe recipe:") {
				t.Fatalf("sequelize-cli did not print the safe recipe:\n%s", out)
			}
			if after := e.meta(t); strings.Join(after, ",") != strings.Join(before, ",") {
				t.Fatalf("SequelizeMeta changed: %v → %v", before, after)
			}
			if v := e.scalar(t, c.unchanged); v != "0" {
				t.Fatalf("the refused migration changed the schema (%s = %s)", c.unchanged, v)
			}
			if c.dir == "remove-column" {
				if v := e.scalar(t, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'JournalLines' AND column_name = 'memo'`); v != "1" {
					t.Fatal("memo was dropped")
				}
			}
			t.Logf("sequelize-cli printed (exit %d):\n%s", code, out)
		})
	}
}

// TestSequelizeHalfAppliedMigrationSaysWhatCommitted: sequelize-cli runs a
// migration without a transaction, so when its second statement is
// refused the first has already committed. The refusal must say so, with
// that statement, so that the user knows what to undo before re-running.
func TestSequelizeHalfAppliedMigrationSaysWhatCommitted(t *testing.T) {
	e := setup(t)
	before := e.meta(t)
	out, code := e.cli(t, "db:migrate", "--migrations-path", filepath.Join("bad", "half-applied"))
	if code == 0 {
		t.Fatalf("db:migrate succeeded:\n%s", out)
	}
	if !strings.Contains(out, "pgguard: add-column-volatile-default:") {
		t.Fatalf("sequelize-cli did not print the refusal:\n%s", out)
	}
	if !strings.Contains(out, "Already committed by this migration") || !strings.Contains(out, "nickname2") {
		t.Fatalf("the refusal does not say that the migration's first statement already committed:\n%s", out)
	}
	if strings.Contains(out, `CREATE TABLE IF NOT EXISTS "SequelizeMeta"`) {
		t.Fatalf("the tool's own ledger table is listed as part of the migration:\n%s", out)
	}
	if after := e.meta(t); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("SequelizeMeta changed: %v → %v", before, after)
	}
	// What the refusal says is what the server holds: the first column is
	// there, the refused one is not.
	if v := e.scalar(t, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'Accounts' AND column_name = 'nickname2'`); v != "1" {
		t.Fatalf("Accounts.nickname2: %s columns, want the committed one", v)
	}
	if v := e.scalar(t, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'JournalLines' AND column_name = 'reference'`); v != "0" {
		t.Fatal("the refused column was added")
	}
	t.Logf("sequelize-cli printed (exit %d):\n%s", code, out)
}
