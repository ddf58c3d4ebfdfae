// Command demo shows pgguard on a throwaway PostgreSQL: it starts a
// cluster, runs the pgguard binary in front of it, and runs a psql session
// and a sample migration through the proxy. `make demo` runs it.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgguard/pgguard/internal/pgtest"
)

func main() {
	bin := flag.String("pgguard", "bin/pgguard", "path of the pgguard binary")
	script := flag.String("script", "cmd/demo/session.sql", "psql script to run through pgguard")
	interactive := flag.Bool("interactive", false, "keep running after the script, so you can connect yourself")
	flag.Parse()
	if err := run(*bin, *script, *interactive); err != nil {
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
	fmt.Printf("   PostgreSQL %d on %s (data in %s)\n", pg.Version, pg.Addr(), pg.DataDir)

	port, err := pgtest.FreePort()
	if err != nil {
		return err
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	step("starting pgguard on " + listen + " in front of it")
	cmd := exec.Command(bin, "serve", "--listen", listen, "--upstream", pg.Addr(), "--admin", "off")
	pgguardOut := prefixed("   pgguard │ ")
	cmd.Stdout, cmd.Stderr = pgguardOut, pgguardOut
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s (run `make build` first): %w", bin, err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	if err := waitListening(listen); err != nil {
		return err
	}

	host, p, _ := net.SplitHostPort(listen)
	step(fmt.Sprintf("running %s with psql through pgguard (psql -h %s -p %s)", script, host, p))
	psql := exec.Command(pg.Tool("psql"), "-X", "-e", "-v", "ON_ERROR_STOP=0", "-f", script)
	psql.Env = append(os.Environ(), "PGHOST="+host, "PGPORT="+p, "PGUSER="+pgtest.SCRAMUser,
		"PGPASSWORD="+pgtest.Password, "PGDATABASE=postgres", "PGSSLMODE=disable", "PGAPPNAME=pgguard-demo")
	// One pipe for both, so notices and errors stay next to their statements.
	psqlOut := prefixed("   psql    │ ")
	psql.Stdout, psql.Stderr = psqlOut, psqlOut
	if err := psql.Run(); err != nil {
		return fmt.Errorf("psql: %w", err)
	}
	if interactive {
		step("pgguard is running; connect with:")
		fmt.Printf("   PGPASSWORD=%s psql -h %s -p %s -U %s postgres\n   Press Ctrl-C to stop.\n", pgtest.Password, host, p, pgtest.SCRAMUser)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
	}
	step("done: stopping pgguard and PostgreSQL")
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

// prefixed returns a writer that prints each line with a prefix.
func prefixed(prefix string) *os.File {
	r, w, err := os.Pipe()
	if err != nil {
		panic(err)
	}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			fmt.Println(prefix + strings.TrimRight(sc.Text(), " "))
		}
	}()
	return w
}
