package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/policy"
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
	rules := fs.String("rules", "", "with --target: the rules file whose proxy.targets name it")
	target := fs.String("target", "", "take the connection from this target of --rules: its upstream and TLS, and the user, database and password of its monitor: block (flags given explicitly win)")
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
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var spec pgcatalog.ConnSpec
	if *target != "" {
		var err error
		if spec, err = targetConn(*rules, *target); err != nil {
			fmt.Fprintf(io.err, "pgguard sizes export: --target %s: %v\n", *target, err)
			return 2
		}
	} else {
		sp := targetSpec{name: "sizes", listen: "127.0.0.1:0", upstream: *upstream, tls: *tlsMode, ca: *ca, serverName: *serverName}
		t, err := sp.target()
		if err != nil {
			fmt.Fprintf(io.err, "pgguard sizes export: %v\n", err)
			return 2
		}
		spec = pgcatalog.ConnSpec{Upstream: *upstream, TLS: t.UpstreamTLSConfig}
	}
	if spec.User == "" || given["user"] {
		spec.User = *userName
	}
	if spec.Database == "" || given["database"] {
		spec.Database = *database
	}
	if spec.Database == "" {
		spec.Database = spec.User
	}
	if spec.Password == "" || given["password-file"] {
		p, err := readSecret(*passwordFile, "PGPASSWORD")
		if err != nil {
			fmt.Fprintf(io.err, "pgguard sizes export: --password-file: %v\n", err)
			return 2
		}
		spec.Password = p
	}
	spec.ConnectTimeout = *timeout
	ctx, cancel := context.WithTimeout(context.Background(), *timeout+5*time.Minute)
	defer cancel()
	cctx, ccancel := context.WithTimeout(ctx, *timeout)
	conn, err := pgcatalog.Connect(cctx, spec)
	ccancel()
	if err != nil {
		fmt.Fprintf(io.err, "pgguard sizes export: connecting to %s: %v\n", spec.Upstream, err)
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

// targetConn is the connection serve's target name of the rules file at
// path would use for its monitor: block: the target's upstream and TLS,
// the block's user, database and password.
func targetConn(path, name string) (pgcatalog.ConnSpec, error) {
	if path == "" {
		return pgcatalog.ConnSpec{}, fmt.Errorf("needs --rules, the file whose proxy.targets name it")
	}
	cfg, err := loadPolicy(path)
	if err != nil {
		return pgcatalog.ConnSpec{}, err
	}
	sfs, settings := newServeFlags(io.Discard)
	sfs.Parse(nil)
	resolve(sfs, settings, os.Getenv, &cfg.Proxy)
	var ft *policy.TargetSettings
	for i := range cfg.Proxy.Targets {
		if cfg.Proxy.Targets[i].Name == name {
			ft = &cfg.Proxy.Targets[i]
		}
	}
	if ft == nil {
		return pgcatalog.ConnSpec{}, fmt.Errorf("%s has no target named %q in proxy.targets", path, name)
	}
	sp := targetSpec{name: ft.Name, listen: "127.0.0.1:0", upstream: ft.Upstream, tls: ft.UpstreamTLS, ca: ft.UpstreamCA, serverName: ft.UpstreamTLSServer}
	if sp.tls == "" {
		sp.tls, sp.ca, sp.serverName = lookup(settings, "upstream-tls").value, lookup(settings, "upstream-ca").value, lookup(settings, "upstream-tls-server-name").value
	}
	t, err := sp.target()
	if err != nil {
		return pgcatalog.ConnSpec{}, err
	}
	spec := pgcatalog.ConnSpec{Upstream: ft.Upstream, TLS: t.UpstreamTLSConfig}
	if m := ft.Monitor; m != nil {
		spec.User, spec.Database = m.User, m.Database
		switch {
		case m.PasswordFile != "":
			if spec.Password, err = readSecret(m.PasswordFile, ""); err != nil {
				return spec, fmt.Errorf("monitor.password_file: %w", err)
			}
		case m.PasswordEnv != "":
			spec.Password = os.Getenv(m.PasswordEnv)
		}
	}
	return spec, nil
}
