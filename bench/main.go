// Command bench measures pgguard against a direct connection and PgBouncer,
// all in front of one throwaway PostgreSQL, with pgbench. It interleaves the
// three targets cell by cell, prints a Markdown report and writes it to
// bench/results/. `make bench` runs it; bench/README.md explains the columns.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the harness's settings, from flags.
type options struct {
	pgguard   string        // pgguard binary
	pgbouncer string        // pgbouncer binary
	duration  time.Duration // per pgbench run, whole seconds
	warmup    time.Duration // per target, before the first cell
	clients   []int
	modes     []string
	scripts   []string // built-in pgbench scripts, run over modes × clients
	// appScripts (bench/scripts/*.sql) run over appModes × appClients.
	appScripts []string
	appModes   []string
	appClients []int
	// countTx is the number of transactions per run of the statement
	// count (server statements per client statement); 0 skips it.
	countTx int
	scale   int   // pgbench -i -s
	idle    int   // idle connections to hold open; 0 skips
	connect []int // client counts for the pgbench -C run; empty skips
	out     string
	keep    bool   // keep the work directory (logs, configuration)
	profile string // where to write a CPU profile of pgguard; "" skips
	// floor lists the client counts at which pgguard and PgBouncer are
	// measured beside bench/floor, the cheapest relay Go can run; empty skips.
	floor []int
}

var knownModes = []string{"simple", "extended", "prepared"}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, o)
	interrupted := ctx.Err() != nil // before stop(), which cancels ctx too
	stop()
	if err != nil {
		if interrupted {
			err = errors.New("interrupted; everything it started has been stopped")
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.pgguard, "pgguard", "bin/pgguard", "path of the pgguard binary (`make build`)")
	fs.StringVar(&o.pgbouncer, "pgbouncer", "pgbouncer", "path or name of the pgbouncer binary")
	fs.DurationVar(&o.duration, "duration", 6*time.Second, "length of each pgbench run (whole seconds)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "pgbench -S run per target before measuring; 0 skips")
	clients := fs.String("clients", "1,8,64", "pgbench client counts")
	modes := fs.String("modes", strings.Join(knownModes, ","), "pgbench query modes (-M)")
	scripts := fs.String("scripts", strings.Join(builtinScripts, ","), "pgbench built-in scripts (-b)")
	appScriptsFlag := fs.String("app-scripts", strings.Join(appScripts(), ","), "application-traffic scripts (bench/scripts/*.sql, pgbench -f); empty skips")
	appModes := fs.String("app-modes", "extended", "query modes (-M) for the application-traffic scripts")
	appClients := fs.String("app-clients", "8,64", "client counts for the application-traffic scripts")
	fs.IntVar(&o.countTx, "count", 200, "transactions per run when counting the statements the server executes per client statement (1 client, log_statement = all); 0 skips")
	fs.IntVar(&o.scale, "scale", 10, "pgbench scale factor (-i -s)")
	fs.IntVar(&o.idle, "idle", 1000, "idle connections to open through pgguard and PgBouncer for the memory test; 0 skips")
	connect := fs.String("connect", "1,8", "client counts for the new-connection-per-transaction run (pgbench -C -S); empty skips")
	fs.StringVar(&o.out, "out", "bench/results", "directory the report is written to; empty writes none")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory with the logs of pgguard and PgBouncer")
	floor := fs.String("floor", "8", "client counts at which pgbench -S (simple and prepared) runs through pgguard, bench/floor (the cheapest relay Go can run) and PgBouncer; empty skips")
	fs.StringVar(&o.profile, "profile", "", "after the measurements, write a CPU profile of pgguard under pgbench -S -M simple -c 8 to this file (pgguard runs with --pprof)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if o.clients, err = parseInts("--clients", *clients, false); err != nil {
		return o, err
	}
	if o.connect, err = parseInts("--connect", *connect, true); err != nil {
		return o, err
	}
	if o.floor, err = parseInts("--floor", *floor, true); err != nil {
		return o, err
	}
	if o.modes, err = parseChoices("--modes", *modes, knownModes, false); err != nil {
		return o, err
	}
	if o.scripts, err = parseChoices("--scripts", *scripts, builtinScripts, false); err != nil {
		return o, err
	}
	if o.appScripts, err = parseChoices("--app-scripts", *appScriptsFlag, appScripts(), true); err != nil {
		return o, err
	}
	if o.appModes, err = parseChoices("--app-modes", *appModes, knownModes, false); err != nil {
		return o, err
	}
	if o.appClients, err = parseInts("--app-clients", *appClients, false); err != nil {
		return o, err
	}
	if o.countTx < 0 {
		return o, fmt.Errorf("--count %d: want 0 or more", o.countTx)
	}
	if o.duration < time.Second || o.duration%time.Second != 0 {
		return o, fmt.Errorf("--duration %v: want whole seconds, at least 1s (pgbench -T)", o.duration)
	}
	if o.warmup < 0 || o.warmup%time.Second != 0 {
		return o, fmt.Errorf("--warmup %v: want whole seconds, or 0", o.warmup)
	}
	if o.scale < 1 {
		return o, fmt.Errorf("--scale %d: want at least 1", o.scale)
	}
	if o.idle < 0 {
		return o, fmt.Errorf("--idle %d: want 0 or more", o.idle)
	}
	return o, nil
}

// parseInts parses a comma-separated list of positive integers.
func parseInts(name, s string, emptyOK bool) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: %q is not a positive integer", name, f)
		}
		out = append(out, n)
	}
	if len(out) == 0 && !emptyOK {
		return nil, fmt.Errorf("%s: empty list", name)
	}
	return out, nil
}

// parseChoices parses a comma-separated list whose items must be in known.
func parseChoices(name, s string, known []string, emptyOK bool) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		ok := false
		for _, k := range known {
			ok = ok || f == k
		}
		if !ok {
			return nil, fmt.Errorf("%s: unknown value %q (want some of %s)", name, f, strings.Join(known, ", "))
		}
		out = append(out, f)
	}
	if len(out) == 0 && !emptyOK {
		return nil, fmt.Errorf("%s: empty list", name)
	}
	return out, nil
}
