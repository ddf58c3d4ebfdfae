package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// pgguardBinary builds the command once per test run.
func pgguardBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pgguard-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "pgguard")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// execAsync runs sql on conn in the background and delivers its error.
func execAsync(conn *pgx.Conn, sql string) <-chan error {
	result := make(chan error, 1)
	go func() {
		_, err := conn.Exec(context.Background(), sql)
		result <- err
	}()
	return result
}

func freeAddr(t *testing.T) string {
	p, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}

func waitHTTP(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %d (last: %v)", url, want, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The binary, configured by a rules file with two targets, serves both,
// logs connections as JSON, and on SIGTERM lets a running statement finish.
func TestServeBinaryTargetsLogsAndSIGTERM(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	bin := pgguardBinary(t)
	uat, prod, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	os.WriteFile(rules, []byte(fmt.Sprintf(`proxy:
  log_format: json
  targets:
    - name: uat
      listen: %q
      upstream: %q
    - name: production
      listen: %q
      upstream: %q
`, uat, pg.Addr(), prod, pg.Addr())), 0o644)
	cmd := exec.Command(bin, "serve", "--rules", rules, "--admin", admin, "--max-sigterm-delay", "20s")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var logMu sync.Mutex
	var logLines []string
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logLines = append(logLines, sc.Text())
			logMu.Unlock()
		}
	}()
	waitHTTP(t, "http://"+admin+"/readiness", 200)
	waitHTTP(t, "http://"+admin+"/startup", 200)

	ctx := context.Background()
	for _, addr := range []string{uat, prod} {
		conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://%s:%s@%s/postgres?sslmode=disable&application_name=serve_test", pgtest.SCRAMUser, pgtest.Password, addr))
		if err != nil {
			t.Fatalf("target %s: %v", addr, err)
		}
		conn.Close(ctx)
	}
	busy, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", prod))
	if err != nil {
		t.Fatal(err)
	}
	result := execAsync(busy, "SELECT pg_sleep(1.5)")
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	waitHTTP(t, "http://"+admin+"/readiness", 503)
	if err := <-result; err != nil {
		t.Fatalf("statement cut by SIGTERM: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("pgguard exited with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("pgguard still running 15s after SIGTERM with no work left")
	}
	<-logDone
	logMu.Lock()
	defer logMu.Unlock()
	opened := 0
	for _, l := range logLines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if rec["msg"] == "connection opened" && rec["application_name"] == "serve_test" {
			opened++
			if rec["user"] != pgtest.SCRAMUser || rec["database"] != "postgres" || !strings.HasPrefix(fmt.Sprint(rec["client"]), "127.0.0.1:") {
				t.Errorf("connection log lacks user/database/client: %v", rec)
			}
		}
	}
	if opened != 2 {
		t.Fatalf("%d 'connection opened' lines for serve_test, want 2:\n%s", opened, strings.Join(logLines, "\n"))
	}
}
