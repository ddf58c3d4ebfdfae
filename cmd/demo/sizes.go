package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// runSizes shows issue 23's flow: one pgguard in front of a small "uat"
// and a large "production" database; uat borrows production's sizes, so
// the migration production would refuse is refused in UAT first; then
// pgguard sizes export and lint --sizes judge the same file in CI.
func runSizes(bin, script string) error {
	step("starting a throwaway PostgreSQL with two databases: uat (10 accounts) and production (300,000)")
	pg, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		return err
	}
	defer pg.Close()
	schema := "CREATE TABLE accounts (id bigint PRIMARY KEY, email text, amount int, note text)"
	for db, rows := range map[string]int{"uat": 10, "production": 300000} {
		if err := pg.Exec("CREATE DATABASE " + db + " OWNER " + pgtest.SCRAMUser); err != nil {
			return err
		}
		if err := pg.ExecAs(pgtest.SCRAMUser, db, schema,
			"INSERT INTO accounts SELECT g, 'user' || g || '@example.com', g % 1000 FROM generate_series(1, "+strconv.Itoa(rows)+") g",
			// The insert's counts reach the statistics before VACUUM sets
			// them, not after (which would count the rows twice).
			"SELECT pg_catalog.pg_stat_force_next_flush()",
			"VACUUM ANALYZE accounts"); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "pgguard-demo-sizes-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ports := make([]string, 3)
	for i := range ports {
		p, err := pgtest.FreePort()
		if err != nil {
			return err
		}
		ports[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	uat, prod, admin := ports[0], ports[1], ports[2]
	rules := filepath.Join(dir, "environments.yaml")
	cfg := "proxy:\n  admin: " + admin + "\n  targets:\n" +
		"    - name: uat\n      listen: " + uat + "\n      upstream: " + pg.Addr() + "\n      sizes_from: production\n" +
		"    - name: production\n      listen: " + prod + "\n      upstream: " + pg.Addr() + "\n" +
		"      monitor: {user: " + pgtest.SCRAMUser + ", database: production, password_env: DEMO_MONITOR_PASSWORD}\n"
	if err := os.WriteFile(rules, []byte(cfg), 0o600); err != nil {
		return err
	}
	step("starting pgguard with two targets (" + rules + "):")
	for _, l := range strings.Split(strings.TrimRight(cfg, "\n"), "\n") {
		fmt.Println("   " + l)
	}
	cmd := exec.Command(bin, "serve", "--rules", rules, "--log-level", "warn", "--audit-log", "off")
	cmd.Env = append(os.Environ(), "DEMO_MONITOR_PASSWORD="+pgtest.Password)
	out := &lineWriter{emit: prefixed("   pgguard │ ")}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s (run `make build` first): %w", bin, err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		out.flush()
	}()
	if err := waitListening(uat); err != nil {
		return err
	}
	ready, err := waitReadiness(admin, "sizes uat: from production")
	if err != nil {
		return err
	}
	step("/readiness says where uat's sizes come from:")
	fmt.Print(indentLines(ready))

	host, p, _ := net.SplitHostPort(uat)
	step(fmt.Sprintf("running %s with psql through the uat target (psql -h %s -p %s uat)", script, host, p))
	if err := psqlScript(pg, host, p, "uat", script); err != nil {
		return err
	}

	file := filepath.Join(dir, "production-sizes.json")
	step("in CI: pgguard sizes export (production) and pgguard lint --sizes on the same migration")
	export := exec.Command(bin, "sizes", "export", "--upstream", pg.Addr(), "--user", pgtest.SCRAMUser, "--database", "production", "--output", file)
	export.Env = append(os.Environ(), "PGPASSWORD="+pgtest.Password)
	export.Stdout, export.Stderr = os.Stdout, os.Stdout
	if err := export.Run(); err != nil {
		return fmt.Errorf("sizes export: %w", err)
	}
	lint := exec.Command(bin, "lint", "--sizes", file, script)
	lo := &lineWriter{emit: prefixed("   lint    │ ")}
	lint.Stdout, lint.Stderr = lo, lo
	err = lint.Run()
	lo.flush()
	if code := lint.ProcessState.ExitCode(); code != 1 {
		return fmt.Errorf("lint --sizes exited %d (%v), want 1: production would refuse the migration", code, err)
	}
	step("done: stopping pgguard and PostgreSQL")
	return nil
}

func waitReadiness(admin, want string) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/readiness")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), want) {
				return string(b), nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("pgguard's /readiness never said %q", want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func psqlScript(pg *pgtest.Server, host, port, db, script string) error {
	psql := exec.Command(pg.Tool("psql"), "-X", "-e", "-v", "ON_ERROR_STOP=0", "-f", script)
	psql.Env = append(os.Environ(), "PGHOST="+host, "PGPORT="+port, "PGUSER="+pgtest.SCRAMUser,
		"PGPASSWORD="+pgtest.Password, "PGDATABASE="+db, "PGSSLMODE=disable", "PGAPPNAME=pgguard-demo")
	td := &tidier{emit: prefixed("   psql    │ ")}
	w := &lineWriter{emit: td.line}
	psql.Stdout, psql.Stderr = w, w
	err := psql.Run()
	w.flush()
	td.flush()
	if err != nil {
		return fmt.Errorf("psql: %w", err)
	}
	return nil
}

func indentLines(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("   " + l + "\n")
	}
	return b.String()
}
