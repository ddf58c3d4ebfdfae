package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// Target names, in the order of the report's columns.
const (
	direct    = "direct"
	pgguard   = "pgguard"
	pgbouncer = "pgbouncer"
)

// target is somewhere pgbench can connect to: PostgreSQL itself or a proxy
// in front of it.
type target struct {
	name string
	addr string   // host:port
	proc *process // nil for direct
}

// startPgguard runs the pgguard binary in front of upstream, with its log in
// dir. Its admin server is off, unless admin names an address, where it then
// serves /debug/pprof/ too.
func startPgguard(bin, upstream, dir, admin string) (*target, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	adminArgs := []string{"--admin", "off"}
	if admin != "" {
		adminArgs = []string{"--admin", admin, "--pprof"}
	}
	cmd := exec.Command(bin, append([]string{"serve", "--listen", addr, "--upstream", upstream}, adminArgs...)...)
	p, err := startProcess(pgguard, cmd, filepath.Join(dir, "pgguard.log"))
	if err != nil {
		return nil, fmt.Errorf("%w (run `make build` first)", err)
	}
	if err := p.waitListening(addr, 20*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return &target{name: pgguard, addr: addr, proc: p}, nil
}

// pgbouncerINI is a PgBouncer configuration that makes it a pure relay:
// session pooling, every server connection used by one client only
// (server_lifetime = 0) and no reset query, so that it does per client what
// pgguard does. Its log goes to stderr, which startProcess captures.
const pgbouncerINI = `[databases]
* = host=%s port=%d

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = session
server_lifetime = 0
server_reset_query =
max_client_conn = %d
default_pool_size = %d
ignore_startup_parameters = extra_float_digits
`

// startPgbouncer runs the PgBouncer binary bin in front of pg with a
// configuration generated in dir. As root it runs as the postgres user, since
// PgBouncer refuses root.
func startPgbouncer(bin string, pg *pgtest.Server, dir string, maxClients int) (*target, error) {
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	dir = filepath.Join(dir, "pgbouncer")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating PgBouncer's directory: %w", err)
	}
	port, err := pgtest.FreePort()
	if err != nil {
		return nil, fmt.Errorf("finding a free port: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	users := filepath.Join(dir, "userlist.txt")
	ini := filepath.Join(dir, "pgbouncer.ini")
	files := map[string]string{
		users: fmt.Sprintf("%q \"\"\n", pgtest.SuperUser),
		ini:   fmt.Sprintf(pgbouncerINI, pg.Host, pg.Port, port, users, maxClients, maxClients),
	}
	for name, text := range files {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			return nil, fmt.Errorf("writing %s: %w", name, err)
		}
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("giving %s to postgres: %w", dir, err)
		}
	}
	cmd := exec.Command(bin, ini)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	p, err := startProcess(pgbouncer, cmd, filepath.Join(dir, "pgbouncer.log"))
	if err != nil {
		return nil, err
	}
	if err := p.waitListening(addr, 20*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return &target{name: pgbouncer, addr: addr, proc: p}, nil
}

// freeAddr is a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	port, err := pgtest.FreePort()
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}
