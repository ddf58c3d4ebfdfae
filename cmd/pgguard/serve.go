package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pgguard/pgguard/internal/observe"
	"github.com/pgguard/pgguard/policy"
	"github.com/pgguard/pgguard/proxy"
)

func init() {
	register("serve", "run the proxy (the default command)", func(args []string, io stdio) int {
		return serve(args, io, os.Getenv, nil)
	})
}

// sigintDelay bounds the drain on SIGINT: an operator at a terminal wants the
// same orderly stop as SIGTERM, only sooner.
const sigintDelay = 2 * time.Second

// serve runs the proxy until a signal. ready, when not nil, receives the
// running server once it listens (tests use it).
func serve(args []string, stdio stdio, getenv func(string) string, ready chan<- *proxy.Server) int {
	fs, settings := newServeFlags(stdio.err)
	if err := parseFlags(fs, args, stdio); err != nil {
		return exitCode(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stdio.err, "pgguard serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	// The rules file is itself a setting; it cannot come from itself.
	resolve(fs, settings, getenv, nil)
	pol, err := loadPolicy(lookup(settings, "rules").value)
	if err != nil {
		fmt.Fprintf(stdio.err, "pgguard: %v\n", err)
		return 2
	}
	resolve(fs, settings, getenv, &pol.Proxy)
	opts, err := validate(settings, &pol.Proxy)
	if err != nil {
		fmt.Fprintf(stdio.err, "pgguard: invalid settings:\n%v\n", indent(err.Error()))
		return 2
	}
	logger := newLogger(stdio.err, opts.logFormat, opts.logLevel)
	opts.proxy.Logger = logger
	engine, err := policy.NewEngine(pol)
	if err != nil {
		fmt.Fprintf(stdio.err, "pgguard: %v\n", err)
		return 2
	}
	opts.proxy.Policy = proxy.NewPolicy(engine)
	obs, err := newObservability(opts.auditLog, stdio.err, opts.proxy.Targets)
	if err != nil {
		fmt.Fprintf(stdio.err, "pgguard: %v\n", err)
		return 2
	}
	defer obs.close()
	obs.metrics.ConfigLoaded(nil)
	opts.proxy.Observer = obs.observer
	borrowed, err := startBorrowing(opts, logger)
	if err != nil {
		fmt.Fprintf(stdio.err, "pgguard: %v\n", err)
		return 2
	}
	defer borrowed.stop()
	obs.metrics.WatchBorrowedSizes(borrowed.metrics)
	obs.metrics.WatchBorrowedUnmapped(borrowed.unmapped)
	srv, err := proxy.New(opts.proxy)
	if err != nil {
		fmt.Fprintf(stdio.err, "pgguard: %v\n", err)
		return 2
	}
	mem := srv.StatementMemory()
	observe.WatchStatementMemory(obs.registry, mem.InUse, mem.Limit, mem.Refused)
	if err := srv.Listen(); err != nil {
		fmt.Fprintf(stdio.err, "pgguard: %v\n", err)
		return 1
	}
	upstreams := newUpstreamChecker(opts.proxy.Targets, opts.proxy.ConnectTimeout, logger)
	defer upstreams.start()()
	admin, err := startAdmin(opts.admin, srv, logger, adminOptions{metrics: obs.handler(), pprof: opts.pprof, upstreams: upstreams, sizes: borrowed})
	if err != nil {
		fmt.Fprintf(stdio.err, "pgguard: admin server: %v\n", err)
		return 1
	}
	rl := &reloader{path: opts.rulesPath, policy: opts.proxy.Policy, proxy: pol.Proxy, targets: opts.proxy.Targets, obs: obs, log: logger,
		// The borrowed sizes' settings (sizes_*, monitor:) take effect at
		// a reload: validated as at startup, the flags and environment
		// still winning over the file.
		sizes: func(p *policy.ProxySettings) error {
			resolve(fs, settings, getenv, p)
			o, err := validate(settings, p)
			if err != nil {
				return err
			}
			return borrowed.apply(o.borrow)
		}}
	defer rl.start()()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	if admin != nil {
		admin.started.Store(true)
	}
	if ready != nil {
		ready <- srv
	}
	sig := <-sigs
	delay := opts.maxSigtermDelay
	if sig == syscall.SIGINT {
		delay = min(delay, sigintDelay)
	}
	logger.Info("shutting down: no new connections; running sessions may finish", "signal", sig.String(), "max_delay", delay.String())
	ctx, cancel := context.WithTimeout(context.Background(), delay)
	defer cancel()
	go func() {
		// A second signal means now.
		<-sigs
		logger.Warn("second signal: closing every session now")
		cancel()
	}()
	code := 0
	if err := srv.Shutdown(ctx); err != nil {
		code = 1
	}
	<-served
	if admin != nil {
		admin.close()
	}
	logger.Info("stopped")
	return code
}

// newServeFlags defines one string flag per setting; values are checked
// later, in validate, together with the environment and the file.
func newServeFlags(stderr io.Writer) (*flag.FlagSet, []*setting) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	settings := serveSettings()
	for _, s := range settings {
		if s.boolean {
			fs.Var(&boolFlag{s.def}, s.name, s.usage+" (env "+s.env()+")")
			continue
		}
		fs.String(s.name, s.def, s.usage+" (env "+s.env()+")")
	}
	// serve is the default command: its help is pgguard's.
	fs.Usage = func() { usage(fs.Output(), fs) }
	return fs, settings
}

// loadPolicy reads the rules file, or the built-in policy when path is "".
func loadPolicy(path string) (*policy.Config, error) {
	if path == "" {
		return policy.DefaultConfig()
	}
	return policy.LoadConfig(path)
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func indent(s string) string {
	out := "  "
	for _, c := range s {
		out += string(c)
		if c == '\n' {
			out += "  "
		}
	}
	return out
}
