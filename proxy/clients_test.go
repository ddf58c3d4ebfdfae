package proxy

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// pgEnv points libpq programs at addr.
func pgEnv(addr, user, db string) []string {
	host, port, _ := net.SplitHostPort(addr)
	return append(os.Environ(), "PGHOST="+host, "PGPORT="+port, "PGUSER="+user, "PGDATABASE="+db,
		"PGPASSWORD="+pgtest.Password, "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
}

func runTool(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(pg.Tool(name), args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPsql(t *testing.T) {
	_, addr := startProxy(t, nil)
	env := pgEnv(addr, pgtest.SCRAMUser, "postgres")
	out := runTool(t, env, "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", "SELECT current_user || ' ' || 6*7")
	if strings.TrimSpace(out) != pgtest.SCRAMUser+" 42" {
		t.Fatalf("psql -c printed %q", out)
	}

	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	var csv bytes.Buffer
	for i := 0; i < 5000; i++ {
		csv.WriteString("1,hello\n")
	}
	os.WriteFile(in, csv.Bytes(), 0o644)
	script := filepath.Join(dir, "script.sql")
	outFile := filepath.Join(dir, "out.csv")
	os.WriteFile(script, []byte(`
CREATE TEMP TABLE psql_t(id int, v text);
\copy psql_t FROM '`+in+`' WITH (FORMAT csv)
BEGIN;
UPDATE psql_t SET id = 2;
COMMIT;
\copy (SELECT * FROM psql_t) TO '`+outFile+`' WITH (FORMAT csv)
SELECT count(*), sum(id) FROM psql_t;
`), 0o644)
	out = runTool(t, env, "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", script)
	if !strings.Contains(out, "5000|10000") {
		t.Fatalf("script output %q", out)
	}
	got, _ := os.ReadFile(outFile)
	if bytes.Count(got, []byte("2,hello\n")) != 5000 {
		t.Fatalf("\\copy TO wrote %d bytes", len(got))
	}
}

// Ctrl-C in psql sends a CancelRequest, which pgguard forwards to the
// backend that runs the statement.
func TestPsqlCtrlC(t *testing.T) {
	_, addr := startProxy(t, nil)
	cmd := exec.Command(pg.Tool("psql"), "-X", "-c", "SELECT pg_sleep(30)")
	cmd.Env = pgEnv(addr, pgtest.SuperUser, "postgres")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	start := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("psql still running 10s after Ctrl-C")
	}
	if !strings.Contains(out.String(), "canceling statement due to user request") {
		t.Fatalf("psql printed %q after %v, want the server's cancel message", out.String(), time.Since(start))
	}
}

func TestPgbench(t *testing.T) {
	_, addr := startProxy(t, nil)
	if _, err := pg.CreateDatabase("bench"); err != nil {
		t.Fatal(err)
	}
	runTool(t, pgEnv(pg.Addr(), pgtest.SuperUser, "bench"), "pgbench", "-i", "-q", "-s", "1")
	for _, mode := range []string{"simple", "extended", "prepared"} {
		t.Run(mode, func(t *testing.T) {
			out := runTool(t, pgEnv(addr, pgtest.SuperUser, "bench"), "pgbench", "-S", "-M", mode, "-c", "4", "-j", "2", "-t", "300", "-n")
			if !strings.Contains(out, "number of transactions actually processed: 1200/1200") {
				t.Fatalf("pgbench -M %s:\n%s", mode, out)
			}
			if strings.Contains(out, "number of failed transactions") && !strings.Contains(out, "number of failed transactions: 0 ") {
				t.Fatalf("pgbench -M %s reported failures:\n%s", mode, out)
			}
		})
	}
	// The TPC-B-like default script writes, in transactions.
	out := runTool(t, pgEnv(addr, pgtest.SuperUser, "bench"), "pgbench", "-M", "extended", "-c", "4", "-t", "100", "-n")
	if !strings.Contains(out, "processed: 400/400") {
		t.Fatalf("pgbench tpcb:\n%s", out)
	}
}
