package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgguard/pgguard/internal/pgcatalog"
)

func init() {
	register("sizes", "export a database's table and index sizes (pgguard sizes export), for lint --sizes and sizes_file", runSizes)
}

// readSecret reads a password from a file (its first line) or, when file
// is empty, from the environment variable env.
func readSecret(file, env string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r"), nil
	}
	if env != "" {
		return os.Getenv(env), nil
	}
	return "", nil
}

func runSizes(args []string, io stdio) int {
	if len(args) == 0 || args[0] != "export" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "-help") {
			fmt.Fprintln(io.out, "usage: pgguard sizes export [flags]   (pgguard sizes export --help lists them)")
			return 0
		}
		problem := "no subcommand"
		if len(args) > 0 {
			problem = fmt.Sprintf("unknown subcommand %q", args[0])
		}
		fmt.Fprintf(io.err, "pgguard sizes: %s\nusage: pgguard sizes export [flags]\n", problem)
		return 2
	}
	fs := flag.NewFlagSet("pgguard sizes export", flag.ContinueOnError)
	env := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	defUser := env("PGUSER", "")
	if defUser == "" {
		if u, err := user.Current(); err == nil {
			defUser = u.Username
		}
	}
	upstream := fs.String("upstream", env("PGGUARD_UPSTREAM", "127.0.0.1:5432"), "PostgreSQL server, as serve's --upstream: host:port, or a unix-socket directory[:port]")
	tlsMode := fs.String("upstream-tls", env("PGGUARD_UPSTREAM_TLS", "disable"), "TLS to the server: disable, require or verify-full")
	ca := fs.String("upstream-ca", env("PGGUARD_UPSTREAM_CA", ""), "CA certificate file (PEM) to verify the server with")
	serverName := fs.String("upstream-tls-server-name", env("PGGUARD_UPSTREAM_TLS_SERVER_NAME", ""), "server name to verify in the certificate (default: the upstream host)")
	userName := fs.String("user", defUser, "role to connect as (default $PGUSER); it needs no privilege beyond reading pg_catalog")
	database := fs.String("database", env("PGDATABASE", ""), "database to export (default $PGDATABASE, else the role's name)")
	passwordFile := fs.String("password-file", "", "file holding the password (default: the environment variable PGPASSWORD)")
	output := fs.String("output", "-", "file to write (written whole, then renamed into place); - for standard output")
	timeout := fs.Duration("connect-timeout", 10*time.Second, "time allowed to connect")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pgguard sizes export [flags]")
		fmt.Fprintln(fs.Output(), "\nWrites, as JSON, every table's, partition's and index's estimated rows, bytes,\nparent and whether it was ever analyzed: the sizes pgguard lint --sizes and a\ntarget's sizes_file judge with. No row data, no column value. One catalog query.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args[1:], io); err != nil {
		return exitCode(err)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if *database == "" {
		*database = *userName
	}
	sp := targetSpec{name: "sizes", listen: "127.0.0.1:0", upstream: *upstream, tls: *tlsMode, ca: *ca, serverName: *serverName}
	t, err := sp.target()
	if err != nil {
		fmt.Fprintf(io.err, "pgguard sizes export: %v\n", err)
		return 2
	}
	password, err := readSecret(*passwordFile, "PGPASSWORD")
	if err != nil {
		fmt.Fprintf(io.err, "pgguard sizes export: --password-file: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout+5*time.Minute)
	defer cancel()
	cctx, ccancel := context.WithTimeout(ctx, *timeout)
	conn, err := pgcatalog.Connect(cctx, pgcatalog.ConnSpec{Upstream: *upstream, User: *userName, Password: password, Database: *database, TLS: t.UpstreamTLSConfig, ConnectTimeout: *timeout})
	ccancel()
	if err != nil {
		fmt.Fprintf(io.err, "pgguard sizes export: connecting to %s: %v\n", *upstream, err)
		return 1
	}
	defer conn.Close(context.Background())
	q := &pgcatalog.ConnQuerier{Ctx: ctx, Conn: conn}
	f, err := pgcatalog.Export(q, time.Now())
	if err != nil {
		if q.Err != nil {
			err = fmt.Errorf("%v: %v", err, q.Err)
		}
		fmt.Fprintf(io.err, "pgguard sizes export: %v\n", err)
		return 1
	}
	if *output == "-" {
		if err := f.Write(io.out); err != nil {
			fmt.Fprintf(io.err, "pgguard sizes export: %v\n", err)
			return 1
		}
		return 0
	}
	if err := writeFileAtomic(*output, f); err != nil {
		fmt.Fprintf(io.err, "pgguard sizes export: %v\n", err)
		return 1
	}
	fmt.Fprintf(io.err, "pgguard sizes export: %d relations of %s written to %s\n", len(f.Relations), f.Database, *output)
	return 0
}

// writeFileAtomic writes f next to path and renames it into place, so
// that a reader (a serve whose sizes_file it is) never sees half a file.
func writeFileAtomic(path string, f *pgcatalog.SizeFile) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pgguard-sizes-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := f.Write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
