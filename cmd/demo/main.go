// Command demo shows pgguard on a throwaway PostgreSQL: it starts a
// cluster, runs the pgguard binary in front of it, and runs a psql session
// and a sample migration through the proxy. `make demo` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

func main() {
	bin := flag.String("pgguard", "bin/pgguard", "path of the pgguard binary")
	script := flag.String("script", "cmd/demo/session.sql", "psql script to run through pgguard")
	interactive := flag.Bool("interactive", false, "keep running after the script, so you can connect yourself")
	sizes := flag.Bool("sizes", false, "show a UAT target judged with production's table sizes (make demo-sizes); --script defaults to cmd/demo/sizes.sql")
	flag.Parse()
	var err error
	if *sizes {
		s := *script
		if s == "cmd/demo/session.sql" {
			s = "cmd/demo/sizes.sql"
		}
		err = runSizes(*bin, s)
	} else {
		err = run(*bin, *script, *interactive)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(bin, script string, interactive bool) error {
	step("starting a throwaway PostgreSQL")
	pg, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		return err
	}
	defer pg.Close()
	// server_version_num 150018 is PostgreSQL 15.18 (10 and later).
	fmt.Printf("   PostgreSQL %d.%d on %s (data in %s)\n", pg.Version/10000, pg.Version%100, pg.Addr(), pg.DataDir)

	port, err := pgtest.FreePort()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "pgguard-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	audit := filepath.Join(dir, "audit.jsonl")
	listen := "127.0.0.1:" + strconv.Itoa(port)
	step("starting pgguard on " + listen + " in front of it (its log: warnings only; the audit log goes to a file, summed up at the end)")
	cmd := exec.Command(bin, "serve", "--listen", listen, "--upstream", pg.Addr(), "--admin", "off",
		"--audit-log", audit, "--log-level", "warn")
	pgguardOut := &lineWriter{emit: prefixed("   pgguard │ ")}
	cmd.Stdout, cmd.Stderr = pgguardOut, pgguardOut
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s (run `make build` first): %w", bin, err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			pgguardOut.flush()
		}
	}
	defer stop()
	if err := waitListening(listen); err != nil {
		return err
	}

	host, p, _ := net.SplitHostPort(listen)
	step(fmt.Sprintf("running %s with psql through pgguard (psql -h %s -p %s)", script, host, p))
	psql := exec.Command(pg.Tool("psql"), "-X", "-e", "-v", "ON_ERROR_STOP=0", "-f", script)
	psql.Env = append(os.Environ(), "PGHOST="+host, "PGPORT="+p, "PGUSER="+pgtest.SCRAMUser,
		"PGPASSWORD="+pgtest.Password, "PGDATABASE=postgres", "PGSSLMODE=disable", "PGAPPNAME=pgguard-demo")
	// One writer for both, so notices and errors stay next to their
	// statements; the tidier shows each recipe once.
	td := &tidier{emit: prefixed("   psql    │ ")}
	psqlOut := &lineWriter{emit: td.line}
	psql.Stdout, psql.Stderr = psqlOut, psqlOut
	err = psql.Run()
	psqlOut.flush()
	td.flush()
	if err != nil {
		return fmt.Errorf("psql: %w", err)
	}
	if interactive {
		step("pgguard is running; connect with:")
		fmt.Printf("   PGPASSWORD=%s psql -h %s -p %s -U %s postgres\n   Press Ctrl-C to stop.\n", pgtest.Password, host, p, pgtest.SCRAMUser)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
	}
	// Stopped first, so that every audit line is written.
	stop()
	if err := summarizeAudit(os.Stdout, audit); err != nil {
		return err
	}
	step("done: stopping PostgreSQL")
	return nil
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

func waitListening(addr string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgguard did not listen on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// prefixed prints each line with a prefix, without trailing blanks.
func prefixed(prefix string) func(string) {
	return func(l string) { fmt.Println(prefix + strings.TrimRight(l, " ")) }
}

// lineWriter hands what is written to it to emit line by line. exec.Cmd
// writes to it from one goroutine at a time when it is both Stdout and
// Stderr, through one pipe, so the two streams keep their order.
type lineWriter struct {
	emit    func(string)
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	for {
		i := strings.IndexByte(string(w.partial), '\n')
		if i < 0 {
			return len(p), nil
		}
		w.emit(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
}

// flush emits an unterminated last line.
func (w *lineWriter) flush() {
	if len(w.partial) > 0 {
		w.emit(string(w.partial))
		w.partial = nil
	}
}
