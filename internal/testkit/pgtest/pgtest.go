// Package pgtest starts throwaway PostgreSQL clusters for tests, benchmarks and
// the demo: initdb in a temporary directory, a free loopback port, and a fixed
// set of roles for every authentication method pgguard relays.
//
// It uses Debian's postgresql package (or any PostgreSQL whose bin directory is
// named by PGGUARD_PG_BINDIR). When the process runs as root, the cluster runs
// as the postgres user, because initdb refuses root.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Roles created in every cluster. The superuser "postgres" logs in with trust
// over TCP and the unix socket; the others each require one method.
const (
	SuperUser     = "postgres"
	TrustUser     = "trust_user"
	CleartextUser = "cleartext_user"
	MD5User       = "md5_user"
	SCRAMUser     = "scram_user"
	// Password is the password of every role that has one.
	Password = "pgguard-secret"
)

// Options configure a cluster.
type Options struct {
	// TLS turns on ssl=on with a certificate signed by a fresh CA (see Server.CAFile).
	TLS bool
	// Settings are extra postgresql.conf settings (name → value).
	Settings map[string]string
	// Log, when set, receives the server's stderr.
	Log *os.File
}

// Server is a running throwaway cluster.
type Server struct {
	Host    string // always 127.0.0.1
	Port    int
	Dir     string // root of the temporary directory (data, socket, certs)
	DataDir string
	// SocketDir holds the unix socket (.s.PGSQL.<Port>).
	SocketDir string
	// CAFile is the PEM CA that signed the server certificate when TLS is on.
	CAFile string
	// Version is the server_version_num, e.g. 150018.
	Version int

	binDir string
	opts   Options
	cred   *syscall.Credential

	mu  sync.Mutex
	cmd *exec.Cmd
	ch  chan struct{} // closed when cmd exits
}

// BinDir finds the PostgreSQL server binaries: $PGGUARD_PG_BINDIR, the newest
// /usr/lib/postgresql/*/bin, or the directory of initdb on PATH.
func BinDir() (string, error) {
	if d := os.Getenv("PGGUARD_PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(real), nil
		}
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries found: install Debian's postgresql package (apt-get install -y postgresql) or set PGGUARD_PG_BINDIR")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start initialises and starts a new cluster. Call Close when done.
func Start(opts Options) (*Server, error) {
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgguard-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", Dir: dir, DataDir: filepath.Join(dir, "data"), SocketDir: filepath.Join(dir, "sock"), binDir: binDir, opts: opts}
	if err := s.init(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.bootstrap(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) init() error {
	if err := os.Chmod(s.Dir, 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(s.SocketDir, 0o755); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root needs the postgres user to run initdb: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, p := range []string{s.Dir, s.SocketDir} {
			if err := os.Chown(p, uid, gid); err != nil {
				return err
			}
		}
	}
	if s.opts.TLS {
		if err := s.writeCerts(); err != nil {
			return fmt.Errorf("writing test certificates: %w", err)
		}
	}
	cmd := s.command("initdb", "-D", s.DataDir, "-U", SuperUser, "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	port, err := FreePort()
	if err != nil {
		return err
	}
	s.Port = port
	conf := map[string]string{
		"port":                       strconv.Itoa(port),
		"listen_addresses":           "'127.0.0.1'",
		"unix_socket_directories":    "'" + s.SocketDir + "'",
		"fsync":                      "off",
		"synchronous_commit":         "off",
		"full_page_writes":           "off",
		"max_connections":            "300",
		"shared_buffers":             "64MB",
		"log_min_messages":           "warning",
		"log_connections":            "off",
		"timezone":                   "'UTC'",
		"dynamic_shared_memory_type": "posix",
	}
	if s.opts.TLS {
		conf["ssl"] = "on"
		conf["ssl_cert_file"] = "'" + filepath.Join(s.Dir, "server.crt") + "'"
		conf["ssl_key_file"] = "'" + filepath.Join(s.Dir, "server.key") + "'"
	}
	for k, v := range s.opts.Settings {
		conf[k] = v
	}
	var b strings.Builder
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, conf[k])
	}
	if err := appendFile(filepath.Join(s.DataDir, "postgresql.conf"), b.String()); err != nil {
		return err
	}
	hba := "local all all trust\n" +
		"host all " + CleartextUser + " 127.0.0.1/32 password\n" +
		"host all " + MD5User + " 127.0.0.1/32 md5\n" +
		"host all " + SCRAMUser + " 127.0.0.1/32 scram-sha-256\n" +
		"host all all 127.0.0.1/32 trust\n" +
		"host all all ::1/128 trust\n"
	return os.WriteFile(filepath.Join(s.DataDir, "pg_hba.conf"), []byte(hba), 0o600)
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.binDir, name), args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// Start starts the postmaster (again, after Stop) and waits until it accepts
// connections.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("pgtest: server already running")
	}
	cmd := s.command("postgres", "-D", s.DataDir)
	// If the test binary dies, the postmaster gets SIGQUIT (immediate shutdown)
	// instead of living on.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	if s.opts.Log != nil {
		cmd.Stderr = s.opts.Log
		cmd.Stdout = s.opts.Log
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	ch := make(chan struct{})
	go func() { cmd.Wait(); close(ch) }()
	s.cmd, s.ch = cmd, ch
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.DSN(SuperUser, "postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-ch:
			s.cmd = nil
			return fmt.Errorf("postgres exited during start-up: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within 30s: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the postmaster down (fast shutdown: running sessions are
// terminated) and waits for it to exit. The data directory is kept.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.ch:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Signal(syscall.SIGQUIT)
		<-s.ch
	}
	s.cmd = nil
	return nil
}

// Close stops the server and removes its directory.
func (s *Server) Close() error {
	err := s.Stop()
	os.RemoveAll(s.Dir)
	return err
}

func (s *Server) bootstrap() error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DSN(SuperUser, "postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&s.Version); err != nil {
		return err
	}
	stmts := []string{
		"CREATE ROLE " + TrustUser + " LOGIN",
		"SET password_encryption = 'md5'",
		"CREATE ROLE " + MD5User + " LOGIN PASSWORD '" + Password + "'",
		"SET password_encryption = 'scram-sha-256'",
		"CREATE ROLE " + SCRAMUser + " LOGIN PASSWORD '" + Password + "'",
		"CREATE ROLE " + CleartextUser + " LOGIN PASSWORD '" + Password + "'",
		"GRANT ALL ON SCHEMA public TO PUBLIC",
	}
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// Addr is host:port of the server's TCP listener.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// DSN is a libpq-style URL for user and database over TCP, without TLS.
func (s *Server) DSN(user, database string) string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", user, Password, s.Addr(), database)
}

// Exec runs SQL statements as the superuser.
func (s *Server) Exec(sql ...string) error {
	return s.ExecAs(SuperUser, "postgres", sql...)
}

// ExecAs runs SQL statements as user in database, one Query each.
func (s *Server) ExecAs(user, database string, sql ...string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DSN(user, database))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, q := range sql {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// CreateDatabase creates a fresh database and returns its name.
func (s *Server) CreateDatabase(name string) (string, error) {
	return name, s.Exec("CREATE DATABASE " + pgx.Identifier{name}.Sanitize())
}

// Tool is the path of a PostgreSQL client program (psql, pgbench) that
// matches the server.
func (s *Server) Tool(name string) string {
	p := filepath.Join(s.binDir, name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return name
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
