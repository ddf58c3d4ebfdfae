package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgguard/pgguard/proxy"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The checker dials TCP and unix-socket upstreams, warns once when one is
// unreachable (not at every check), says when it comes back, and reports
// each upstream's state for /readiness.
func TestUpstreamChecker(t *testing.T) {
	t.Parallel()
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone.Close() // nothing listens there now: connection refused
	// Not t.TempDir: its path can exceed the 108-byte limit of a socket's.
	sockDir, err := os.MkdirTemp("", "pgguard-sock-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	unix, err := net.Listen("unix", filepath.Join(sockDir, ".s.PGSQL.5433"))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close()

	var logs syncBuffer
	c := newUpstreamChecker([]proxy.Target{
		{Name: "uat", Upstream: up.Addr().String()},
		{Name: "staging", Upstream: gone.Addr().String()},
		{Name: "local", Upstream: sockDir + ":5433"},
		{Name: "nosock", Upstream: sockDir},
	}, time.Second, slog.New(slog.NewTextHandler(&logs, nil)))
	var report strings.Builder
	c.report(&report)
	if n := strings.Count(report.String(), "not checked yet"); n != 4 {
		t.Errorf("before the first check:\n%s", report.String())
	}

	c.checkAll(context.Background())
	report.Reset()
	c.report(&report)
	for _, want := range []string{
		"upstream uat (" + up.Addr().String() + "): reachable",
		"upstream staging (" + gone.Addr().String() + "): unreachable for 0s (checked 0s ago): dial tcp " + gone.Addr().String() + ": connect: connection refused",
		"upstream local (" + sockDir + ":5433): reachable",
		"upstream nosock (" + sockDir + "): unreachable",
	} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, report.String())
		}
	}
	if n := strings.Count(logs.String(), "level=WARN msg=\"upstream unreachable"); n != 2 {
		t.Errorf("%d warnings after the first check, want 2 (staging, nosock):\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "target=staging upstream="+gone.Addr().String()+" error=") {
		t.Errorf("the warning does not name the target, the upstream and the error:\n%s", logs.String())
	}

	// The socket goes away (a closed TCP port could be taken at once by
	// another test's listener, making the upstream reachable again).
	unix.Close()
	c.checkAll(context.Background())
	c.checkAll(context.Background())
	if n := strings.Count(logs.String(), "level=WARN"); n != 3 {
		t.Errorf("%d warnings after local went away and two checks, want 3 (one per change):\n%s", n, logs.String())
	}
}

// Started with an upstream nothing listens on, the binary says so at once,
// keeps serving, and /readiness stays 200 with the upstream's state in
// its body.
func TestServeWarnsAboutUnreachableUpstream(t *testing.T) {
	t.Parallel()
	bin := pgguardBinary(t)
	nowhere, admin := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "--listen", freeAddr(t), "--upstream", nowhere, "--admin", admin, "--connect-timeout", "1s")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitHTTP(t, "http://"+admin+"/startup", 200)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "upstream unreachable") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning about the unreachable upstream:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(stderr.String(), "level=WARN") || !strings.Contains(stderr.String(), "upstream="+nowhere) {
		t.Errorf("warning lacks level or upstream:\n%s", stderr.String())
	}
	resp, err := http.Get("http://" + admin + "/readiness")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "ok\n") || !strings.Contains(string(body), "upstream default ("+nowhere+"): unreachable") {
		t.Errorf("/readiness: %d %q; want 200, ok and the upstream unreachable", resp.StatusCode, body)
	}
}
