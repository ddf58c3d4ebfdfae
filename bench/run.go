package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// run starts PostgreSQL, pgguard and PgBouncer, measures, and writes the
// report. Everything it starts is stopped before it returns, whatever the
// outcome; ctx ends early on Ctrl-C.
func run(ctx context.Context, o options) error {
	start := time.Now()
	if _, err := os.Stat(o.pgguard); err != nil {
		return fmt.Errorf("pgguard binary: %w (run `make build` first)", err)
	}
	bouncerBin, err := findPgbouncer(o.pgbouncer)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "pgguard-bench-")
	if err != nil {
		return fmt.Errorf("creating a work directory: %w", err)
	}
	if o.keep {
		defer step("work directory kept: " + work)
	} else {
		defer os.RemoveAll(work)
	}
	// PgBouncer may run as the postgres user and must reach its directory.
	if err := os.Chmod(work, 0o755); err != nil {
		return fmt.Errorf("opening up %s: %w", work, err)
	}

	step("starting a throwaway PostgreSQL")
	serverLog := filepath.Join(work, "postgresql.log")
	logf, err := os.Create(serverLog)
	if err != nil {
		return fmt.Errorf("creating the server log: %w", err)
	}
	defer logf.Close()
	pg, err := pgtest.Start(pgtest.Options{Log: logf, Settings: map[string]string{
		"max_connections": strconv.Itoa(max(300, o.idle+200)),
		"shared_buffers":  "256MB",
	}})
	if err != nil {
		return fmt.Errorf("starting PostgreSQL: %w", err)
	}
	defer pg.Close()
	scripts, err := writeAppScripts(filepath.Join(work, "scripts"))
	if err != nil {
		return err
	}
	b := &bencher{pg: pg, pgbench: pg.Tool("pgbench"), workDir: work, duration: o.duration,
		scale: o.scale, scripts: scripts, serverLog: serverLog}
	step(fmt.Sprintf("PostgreSQL %d on %s; pgbench -i -s %d", pg.Version, pg.Addr(), o.scale))
	defer b.close()
	if err := b.initialize(ctx, o.scale); err != nil {
		return err
	}

	var admin string
	if o.profile != "" {
		if admin, err = freeAddr(); err != nil {
			return err
		}
	}
	guard, err := startPgguard(o.pgguard, pg.Addr(), work, admin)
	if err != nil {
		return err
	}
	defer guard.proc.stop()
	bouncer, err := startPgbouncer(bouncerBin, pg, work, max(100, o.idle+100))
	if err != nil {
		return err
	}
	defer bouncer.proc.stop()
	targets := []*target{{name: direct, addr: pg.Addr()}, guard, bouncer}
	step(fmt.Sprintf("direct %s, pgguard %s (pid %d), PgBouncer %s (pid %d)", pg.Addr(), guard.addr, guard.proc.pid(), bouncer.addr, bouncer.proc.pid()))

	pgVersion, err := serverVersion(ctx, pg)
	if err != nil {
		return err
	}
	rep := &report{o: o, date: start, machine: describeMachine(pgVersion, b.pgbench, bouncerBin, o.pgguard)}

	// Idle connections first, while both proxies are fresh: memory that
	// earlier traffic left behind would hide what a connection costs.
	if o.idle > 0 {
		for _, t := range targets[1:] {
			step(fmt.Sprintf("%d idle connections through %s", o.idle, t.name))
			r, err := measureIdle(ctx, t, o.idle)
			if err != nil {
				return err
			}
			rep.idle = append(rep.idle, r)
			fmt.Fprintf(os.Stderr, "    RSS %d → %d KiB, %.1f KiB per connection\n", r.beforeKiB, r.afterKiB, r.perConnKiB())
		}
	}
	if o.warmup > 0 {
		step("warming up every target")
		for _, t := range targets {
			if _, err := b.runFor(ctx, t, workload{script: "select-only", mode: "simple", clients: 8}, o.warmup); err != nil {
				return fmt.Errorf("warm-up: %w", err)
			}
		}
	}

	matrix, connect := workloads(o)
	runs := len(targets) * (len(matrix) + len(connect))
	step(fmt.Sprintf("%d pgbench runs of %v, about %v", runs, o.duration, time.Duration(runs)*(o.duration+time.Second)))
	p := &progress{total: runs}
	if rep.cells, err = measureCells(ctx, b, targets, matrix, p); err != nil {
		return err
	}
	if rep.connect, err = measureCells(ctx, b, targets, connect, p); err != nil {
		return err
	}
	if len(o.floor) > 0 {
		if rep.floor, err = measureFloor(ctx, b, guard, bouncer, pg.Addr(), work, o.floor); err != nil {
			return err
		}
	}
	if o.countTx > 0 {
		step(fmt.Sprintf("counting the statements the server executes per client statement (%d transactions, 1 client, log_statement = all)", o.countTx))
		if rep.counts, err = countStatements(ctx, b, targets, countWorkloads(o), o.countTx); err != nil {
			return err
		}
	}
	rep.elapsed = time.Since(start)
	if err := writeReport(rep, o.out); err != nil {
		return err
	}
	if o.profile == "" {
		return nil
	}
	step("profiling pgguard under pgbench -S -M simple -c 8")
	if err := profile(ctx, b, guard, admin, o.profile); err != nil {
		return err
	}
	step(fmt.Sprintf("CPU profile written to %s: go tool pprof -top %s %s", o.profile, o.pgguard, o.profile))
	return nil
}

// workloads lists the cells of the pgbench matrix and of the
// new-connection-per-transaction run.
func workloads(o options) (matrix, connect []workload) {
	for _, s := range o.scripts {
		for _, m := range o.modes {
			for _, c := range o.clients {
				matrix = append(matrix, workload{script: s, mode: m, clients: c})
			}
		}
	}
	for _, s := range o.appScripts {
		for _, m := range o.appModes {
			for _, c := range o.appClients {
				matrix = append(matrix, workload{script: s, mode: m, clients: c})
			}
		}
	}
	for _, c := range o.connect {
		connect = append(connect, workload{script: "select-only", mode: "simple", clients: c, connect: true})
	}
	return matrix, connect
}

// countWorkloads are the workloads whose statements are counted: every
// script in every mode it runs in, at 1 client.
func countWorkloads(o options) []workload {
	var ws []workload
	for _, s := range o.scripts {
		for _, m := range o.modes {
			ws = append(ws, workload{script: s, mode: m, clients: 1})
		}
	}
	for _, s := range o.appScripts {
		for _, m := range o.appModes {
			ws = append(ws, workload{script: s, mode: m, clients: 1})
		}
	}
	return ws
}

// writeReport prints the report and writes it into dir (unless dir is "").
func writeReport(rep *report, dir string) error {
	text := rep.markdown()
	fmt.Println()
	fmt.Print(text)
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, rep.fileName())
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	step("report written to " + path)
	return nil
}

// measureCells runs every workload against every target. The targets take
// turns within a cell, starting with a different one in each cell, so that
// drift on a shared machine (other jobs, a warming cache, a growing table)
// falls on all of them alike.
func measureCells(ctx context.Context, b *bencher, targets []*target, ws []workload, p *progress) ([]cell, error) {
	var cells []cell
	for i, w := range ws {
		c := cell{w: w, m: make(map[string]measurement, len(targets))}
		for k := range targets {
			t := targets[(i+k)%len(targets)]
			m, err := b.run(ctx, t, w)
			if err != nil {
				return nil, err
			}
			c.m[t.name] = m
			p.report(t.name, w, m)
		}
		cells = append(cells, c)
	}
	return cells, nil
}

// floorName is bench/floor's target name.
const floorName = "floor"

// measureFloor builds bench/floor, runs it in front of upstream, and
// measures pgbench -S in simple and prepared mode through pgguard, the
// floor and PgBouncer at each client count.
func measureFloor(ctx context.Context, b *bencher, guard, bouncer *target, upstream, dir string, clients []int) ([]cell, error) {
	step("building bench/floor, the cheapest relay Go can run")
	bin := filepath.Join(dir, "floor")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./bench/floor").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building bench/floor (run the bench from the repository's root): %w\n%s", err, out)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	proc, err := startProcess(floorName, exec.Command(bin, "--listen", addr, "--upstream", upstream), filepath.Join(dir, "floor.log"))
	if err != nil {
		return nil, err
	}
	defer proc.stop()
	if err := proc.waitListening(addr, 20*time.Second); err != nil {
		return nil, err
	}
	var ws []workload
	for _, c := range clients {
		for _, mode := range []string{"simple", "prepared"} {
			ws = append(ws, workload{script: "select-only", mode: mode, clients: c})
		}
	}
	targets := []*target{guard, {name: floorName, addr: addr, proc: proc}, bouncer}
	step(fmt.Sprintf("%d pgbench runs through pgguard, bench/floor and PgBouncer", len(ws)*len(targets)))
	return measureCells(ctx, b, targets, ws, &progress{total: len(ws) * len(targets)})
}

// progress prints one line per pgbench run.
type progress struct{ done, total int }

func (p *progress) report(target string, w workload, m measurement) {
	p.done++
	line := fmt.Sprintf("    [%2d/%d] %-34s %-9s %8.0f tps  avg %7.3f ms  p99 %7.3f ms", p.done, p.total, w, target, m.tps, m.avgMs, m.p99Ms)
	if m.hasCPU {
		line += fmt.Sprintf("  CPU %.3f s/1k tx", m.cpuPer1k())
	}
	fmt.Fprintln(os.Stderr, line)
}

// findPgbouncer resolves the pgbouncer binary: a path, a name on PATH, or
// Debian's /usr/sbin/pgbouncer (not on a non-root PATH).
func findPgbouncer(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if p, err := exec.LookPath(filepath.Join("/usr/sbin", name)); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("pgbouncer %q not found: apt-get install -y pgbouncer, or pass --pgbouncer PATH", name)
}

// serverVersion is PostgreSQL's version string, e.g. "15.14 (Debian 15.14-0+deb12u1)".
func serverVersion(ctx context.Context, pg *pgtest.Server) (string, error) {
	conn, err := pgx.Connect(ctx, pg.DSN(pgtest.SuperUser, "postgres"))
	if err != nil {
		return "", fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "", fmt.Errorf("reading the server version: %w", err)
	}
	return v, nil
}

func step(s string) { fmt.Fprintf(os.Stderr, "==> %s\n", s) }
