package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gopkg.in/yaml.v3"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/proxy"

	"github.com/pgguard/pgguard/internal/observe"
)

// series is one scraped sample: its name, labels and value.
type series struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads /metrics in the text exposition format.
func scrape(t *testing.T, admin string) []series {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	var out []series
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		s := series{labels: map[string]string{}, value: v}
		head := line[:sp]
		if i := strings.IndexByte(head, '{'); i >= 0 {
			s.name = head[:i]
			s.labels = parseLabels(t, head[i+1:len(head)-1])
		} else {
			s.name = head
		}
		out = append(out, s)
	}
	return out
}

// parseLabels parses a="x",b="y \"z\"".
func parseLabels(t *testing.T, s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || len(s) < eq+2 || s[eq+1] != '"' {
			t.Fatalf("bad labels %q", s)
		}
		name := s[:eq]
		var val strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			val.WriteByte(s[i])
		}
		out[name] = val.String()
		s = strings.TrimPrefix(s[i+1:], ",")
	}
	return out
}

// sum adds the values of the samples of name whose labels include want.
func sum(ss []series, name string, want ...string) float64 {
	total := 0.0
next:
	for _, s := range ss {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(want); i += 2 {
			if s.labels[want[i]] != want[i+1] {
				continue next
			}
		}
		total += s.value
	}
	return total
}

// binary is a pgguard process under test with its log collected.
type binary struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  []string
	done chan struct{}
}

func startBinary(t *testing.T, args ...string) *binary {
	t.Helper()
	b := &binary{cmd: exec.Command(pgguardBinary(t), append([]string{"serve"}, args...)...), done: make(chan struct{})}
	stderr, _ := b.cmd.StderrPipe()
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.cmd.Process.Kill()
		b.cmd.Wait()
	})
	go func() {
		defer close(b.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			b.mu.Lock()
			b.log = append(b.log, sc.Text())
			b.mu.Unlock()
		}
	}()
	return b
}

func (b *binary) logged(substr string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.log {
		if strings.Contains(l, substr) {
			return true
		}
	}
	return false
}

func (b *binary) logText() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.log, "\n")
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// obsTables creates a small table and one large enough for the size rules.
func obsTables(t *testing.T, pg *pgtest.Server) {
	t.Helper()
	if err := pg.Exec(
		"CREATE TABLE obs_small (id int PRIMARY KEY, v text)",
		"CREATE TABLE obs_big AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 30000) g",
		"ANALYZE obs_big",
	); err != nil {
		t.Fatal(err)
	}
}

// One allowed, one warned, one rejected and one rewritten DDL through the
// binary move /metrics as they should, with no statement text in any label;
// the audit log file has one JSON line per DDL and no literal; the dashboard
// and the alert rules only use metrics that exist; pprof is served when
// asked for.
func TestObservabilityThroughBinary(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	obsTables(t, pg)
	listen, admin := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	auditPath := filepath.Join(dir, "audit.log")
	// A second target judged with a sizes file, so that the borrowed
	// sizes' metrics exist for the dashboard's check.
	os.WriteFile(rules, []byte("rules:\n  rename-column: warn\n  set-not-null: reject\n  create-index: rewrite\n"+
		"proxy:\n  targets:\n    - {name: uat, listen: "+freeAddr(t)+", upstream: "+pg.Addr()+", sizes_file: testdata/obs-sizes.json}\n"), 0o644)
	b := startBinary(t, "--rules", rules, "--listen", listen, "--upstream", pg.Addr(), "--admin", admin, "--audit-log", auditPath, "--pprof")
	waitHTTP(t, "http://"+admin+"/readiness", 200)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable&application_name=obs_binary", listen))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"ALTER TABLE obs_small ADD COLUMN note text DEFAULT 'secret-value'", // allowed
		"ALTER TABLE obs_small RENAME COLUMN v TO v2",                       // warned
		"CREATE INDEX obs_big_note ON obs_big (note)",                       // rewritten
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var pe *pgconn.PgError
	if _, err := conn.Exec(ctx, "ALTER TABLE obs_big ALTER COLUMN note SET NOT NULL"); !errors.As(err, &pe) || pe.Code != "42501" {
		t.Fatalf("SET NOT NULL on a large table: %v, want pgguard's refusal", err)
	}
	ss := scrape(t, admin)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"pgguard_decisions_total", []string{"rule", "set-not-null", "action", "rejected"}, 1},
		{"pgguard_decisions_total", []string{"rule", "create-index", "action", "rewritten"}, 1},
		{"pgguard_decisions_total", []string{"rule", "rename-column", "action", "warned"}, 1},
		{"pgguard_decisions_total", []string{"rule", "none", "action", "allowed"}, 1},
		{"pgguard_statements_inspected_total", []string{"target", "default", "class", "ddl"}, 4},
		{"pgguard_ddl_duration_seconds_count", []string{"command", "ALTER TABLE", "outcome", "success"}, 2},
		{"pgguard_ddl_duration_seconds_count", []string{"command", "CREATE INDEX", "outcome", "success"}, 1},
		{"pgguard_ddl_duration_seconds_count", []string{"command", "none", "outcome", "rejected"}, 1},
		{"pgguard_ddl_duration_seconds_bucket", []string{"command", "CREATE INDEX", "le", "+Inf"}, 1},
		{"pgguard_client_connections_open", []string{"target", "default"}, 1},
		{"pgguard_server_connections_open", []string{"target", "default"}, 1},
		{"pgguard_client_connections_total", []string{"target", "default"}, 1},
		{"pgguard_upstream_connect_duration_seconds_count", []string{"target", "default"}, 1},
		{"pgguard_upstream_connect_failures_total", []string{"target", "default"}, 0},
		{"pgguard_lock_timeout_failures_total", []string{"target", "default"}, 0},
		{"pgguard_config_last_reload_successful", nil, 1},
	} {
		if got := sum(ss, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if sum(ss, "pgguard_ddl_duration_seconds_sum", "command", "CREATE INDEX") <= 0 || sum(ss, "pgguard_config_last_reload_success_timestamp_seconds") < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Error("the DDL histogram sum or the reload timestamp did not move")
	}
	for _, s := range ss {
		if !strings.HasPrefix(s.name, "pgguard_") {
			continue
		}
		for k, v := range s.labels {
			if strings.ContainsAny(v, "'()") || strings.Contains(v, "obs_") || strings.Contains(v, "secret") || len(v) > 40 {
				t.Errorf("%s label %s=%q carries statement text", s.name, k, v)
			}
		}
	}

	t.Run("dashboard and alerts use existing metrics", func(t *testing.T) {
		exported := map[string]bool{}
		for _, s := range ss {
			exported[s.name] = true
		}
		for _, name := range referencedMetrics(t) {
			if !exported[name] {
				t.Errorf("%s is referenced but not in /metrics", name)
			}
		}
	})

	if code := httpStatus(t, "http://"+admin+"/debug/pprof/"); code != 200 {
		t.Errorf("/debug/pprof/ with --pprof: %d", code)
	}

	conn.Close(ctx)
	waitUntil(t, "the connection to be counted closed", 5*time.Second, func() bool {
		ss := scrape(t, admin)
		return sum(ss, "pgguard_client_connections_open") == 0 && sum(ss, "pgguard_relayed_bytes_total", "direction", "client_to_server") > 0 &&
			sum(ss, "pgguard_relayed_bytes_total", "direction", "server_to_client") > 0
	})
	b.cmd.Process.Signal(syscall.SIGTERM)
	b.cmd.Wait()
	<-b.done

	data, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "secret-value") || strings.Contains(b.logText(), "secret-value") {
		t.Fatalf("a literal reached the logs:\n%s\n%s", data, b.logText())
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var decisions []string
	for _, l := range lines {
		var rec observe.AuditRecord
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("audit line is not JSON: %v\n%s", err, l)
		}
		if rec.Target != "default" || rec.User != "postgres" || rec.ApplicationName != "obs_binary" || !rec.DDL {
			t.Errorf("audit line: %s", l)
		}
		decisions = append(decisions, rec.Decision)
		if rec.Decision == "allow" && rec.Statement != "ALTER TABLE obs_small ADD COLUMN note text DEFAULT $1" {
			t.Errorf("allowed statement logged as %q", rec.Statement)
		}
		if rec.Decision == "rewrite" && rec.RewrittenTo != "CREATE INDEX CONCURRENTLY obs_big_note ON obs_big (note)" {
			t.Errorf("rewritten to %q", rec.RewrittenTo)
		}
	}
	if fmt.Sprint(decisions) != "[allow warn rewrite reject]" {
		t.Fatalf("audit decisions %v, want one line per DDL:\n%s", decisions, data)
	}
}

var metricRef = regexp.MustCompile(`pgguard_[a-z_]+`)

// referencedMetrics lists the pgguard_* series names used by the dashboard
// and the alert rules, checking that both files are well-formed.
func referencedMetrics(t *testing.T) []string {
	t.Helper()
	var exprs []string
	raw, err := os.ReadFile("../../deploy/grafana/pgguard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title      string
		UID        string
		Templating struct {
			List []struct{ Name, Type, Query any }
		}
		Panels []struct {
			Title, Type string
			Datasource  *struct{ Type, UID string }
			Targets     []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	hasDS := false
	for _, v := range dash.Templating.List {
		hasDS = hasDS || (v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus")
	}
	if !hasDS || dash.UID == "" || dash.Title == "" {
		t.Error("the dashboard lacks a uid, a title or the Prometheus datasource variable")
	}
	titles := map[string]bool{}
	for _, p := range dash.Panels {
		titles[p.Title] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q does not query ${datasource}", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, want := range []string{"Rejections by rule", "DDL duration (p50 / p95 / p99)", "Lock-timeout failures and retries", "Connections open", "Recent rejections by rule", "Waits outside the lock queue", "Borrowed sizes age"} {
		if !titles[want] {
			t.Errorf("the dashboard has no panel %q", want)
		}
	}
	raw, err = os.ReadFile("../../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct{ Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			exprs = append(exprs, r.Expr)
		}
	}
	for _, want := range []string{"PgguardRejectionSpike", "PgguardRepeatedLockTimeouts", "PgguardConfigReloadFailed"} {
		if !alerts[want] {
			t.Errorf("alerts.yaml has no %s", want)
		}
	}
	seen := map[string]bool{}
	for _, e := range exprs {
		for _, m := range metricRef.FindAllString(e, -1) {
			seen[m] = true
		}
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) < 10 {
		t.Fatalf("only %d metrics referenced: %v", len(names), names)
	}
	return names
}

// A valid change of the rules file, by SIGHUP or by the file poll, applies
// to the next statement of a session that stays connected; an invalid one
// is kept out and logged; the reload gauges follow both.
func TestPolicyReloadThroughBinary(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	obsTables(t, pg)
	listen, admin := freeAddr(t), freeAddr(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	write := func(content string) {
		tmp := rules + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, rules); err != nil {
			t.Fatal(err)
		}
	}
	write("rules:\n  rename-column: reject\n")
	b := startBinary(t, "--rules", rules, "--listen", listen, "--upstream", pg.Addr(), "--admin", admin, "--audit-log", "off")
	waitHTTP(t, "http://"+admin+"/readiness", 200)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", listen))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	pid := conn.PgConn().PID()
	refused := func(q string) bool {
		t.Helper()
		_, err := conn.Exec(ctx, q)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" && strings.Contains(pe.Message, "rename-column") {
			return true
		}
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return false
	}
	reloads := func(result string) float64 {
		return sum(scrape(t, admin), "pgguard_config_reloads_total", "result", result)
	}
	gauge := func() float64 { return sum(scrape(t, admin), "pgguard_config_last_reload_successful") }
	stamp := func() float64 { return sum(scrape(t, admin), "pgguard_config_last_reload_success_timestamp_seconds") }

	if !refused("ALTER TABLE obs_small RENAME COLUMN v TO w") {
		t.Fatal("rename-column: reject did not refuse")
	}
	started := stamp()

	// Valid, by SIGHUP: the same session is judged by the new level.
	write("rules:\n  rename-column: warn\n")
	b.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the SIGHUP reload", 10*time.Second, func() bool { return reloads("success") >= 2 })
	if refused("ALTER TABLE obs_small RENAME COLUMN v TO w") {
		t.Fatal("after reloading rename-column: warn, the session is still refused")
	}
	if gauge() != 1 || stamp() < started {
		t.Fatalf("after a good reload: successful=%v timestamp=%v (start %v)", gauge(), stamp(), started)
	}
	goodStamp := stamp()

	// Invalid, by the file poll: kept out, logged, gauge 0.
	write("rules:\n  rename-column: sometimes\n")
	waitUntil(t, "the failed reload", 10*time.Second, func() bool { return reloads("failure") >= 1 })
	if gauge() != 0 || stamp() != goodStamp {
		t.Fatalf("after a bad reload: successful=%v timestamp=%v, want 0 and %v", gauge(), stamp(), goodStamp)
	}
	waitUntil(t, "the reason in the log", 5*time.Second, func() bool {
		return b.logged("policy reload failed") && b.logged("sometimes")
	})
	if refused("ALTER TABLE obs_small RENAME COLUMN w TO v") {
		t.Fatal("the invalid policy replaced the previous one")
	}

	// Valid again, by the file poll: back to reject, same session.
	write("rules:\n  rename-column: reject\n")
	waitUntil(t, "the polled reload", 10*time.Second, func() bool { return gauge() == 1 })
	if !refused("ALTER TABLE obs_small RENAME COLUMN v TO w") {
		t.Fatal("after reloading rename-column: reject, the session is not refused")
	}
	if conn.PgConn().PID() != pid || conn.IsClosed() {
		t.Fatal("the session was replaced during reloads")
	}
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("session after reloads: %v", err)
	}
	// (The poll may see the first change before the SIGHUP does: >= 3.)
	if reloads("success") < 3 || reloads("failure") != 1 {
		t.Fatalf("reloads: %v successful, %v failed; want 3 (start, SIGHUP, poll) and 1", reloads("success"), reloads("failure"))
	}
}

// The health endpoints through startup, normal running, a full server and
// a drain: /startup and /readiness fail until started, /readiness fails
// while --max-connections are in use and from the drain on, /liveness is
// always 200. /metrics is served; /debug/pprof/ only with --pprof.
func TestHealthEndpointsLifecycle(t *testing.T) {
	pg := pgtest.Must(t, pgtest.Options{})
	addr := freeAddr(t)
	obs, err := newObservability("off", io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := proxy.New(proxy.Config{
		Targets:        []proxy.Target{{Name: "default", Listen: "127.0.0.1:0", Upstream: pg.Addr()}},
		MaxConnections: 1,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		Observer:       obs.observer,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	a, err := startAdmin(addr, srv, slog.New(slog.NewTextHandler(io.Discard, nil)), adminOptions{metrics: obs.handler()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	check := func(phase string, startup, liveness, readiness int) {
		t.Helper()
		for path, want := range map[string]int{"/startup": startup, "/liveness": liveness, "/readiness": readiness} {
			if got := httpStatus(t, "http://"+addr+path); got != want {
				t.Errorf("%s: %s = %d, want %d", phase, path, got, want)
			}
		}
	}
	check("starting", 503, 200, 503)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	a.started.Store(true)
	check("running", 200, 200, 200)
	if code := httpStatus(t, "http://"+addr+"/metrics"); code != 200 {
		t.Errorf("/metrics: %d", code)
	}
	if code := httpStatus(t, "http://"+addr+"/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ without --pprof: %d, want 404", code)
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", srv.Addrs()[0]))
	if err != nil {
		t.Fatal(err)
	}
	waitHTTP(t, "http://"+addr+"/readiness", 503) // the one connection allowed is in use
	check("full", 200, 200, 503)
	conn.Close(ctx)
	waitHTTP(t, "http://"+addr+"/readiness", 200)

	busy, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", srv.Addrs()[0]))
	if err != nil {
		t.Fatal(err)
	}
	result := execAsync(busy, "SELECT pg_sleep(1)")
	time.Sleep(200 * time.Millisecond)
	drained := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		drained <- srv.Shutdown(sctx)
	}()
	waitHTTP(t, "http://"+addr+"/readiness", 503)
	check("draining", 200, 200, 503)
	if err := <-result; err != nil {
		t.Fatalf("statement cut by the drain: %v", err)
	}
	if err := <-drained; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	<-served
	check("stopped", 200, 200, 503)
}

// --pprof is a switch; its value, from the environment too, is checked
// like every other setting; --audit-log takes a path.
func TestObservabilitySettings(t *testing.T) {
	t.Parallel()
	parse := func(args []string, env map[string]string) (*serveOptions, error) {
		fs, settings := newServeFlags(io.Discard)
		if err := fs.Parse(append([]string{"--upstream", "127.0.0.1:5432"}, args...)); err != nil {
			t.Fatal(err)
		}
		resolve(fs, settings, func(k string) string { return env[k] }, nil)
		return validate(settings, nil)
	}
	o, err := parse(nil, nil)
	if err != nil || o.pprof || o.auditLog != "" {
		t.Fatalf("defaults: %+v, %v; want pprof off and the audit log on stderr", o, err)
	}
	o, err = parse([]string{"--pprof", "--audit-log", "/var/log/pgguard/audit.log"}, nil)
	if err != nil || !o.pprof || o.auditLog != "/var/log/pgguard/audit.log" {
		t.Fatalf("--pprof --audit-log: %+v, %v", o, err)
	}
	if o, err = parse(nil, map[string]string{"PGGUARD_PPROF": "true"}); err != nil || !o.pprof {
		t.Fatalf("PGGUARD_PPROF=true: %+v, %v", o, err)
	}
	if _, err = parse(nil, map[string]string{"PGGUARD_PPROF": "maybe"}); err == nil ||
		!strings.Contains(err.Error(), `pprof (environment variable PGGUARD_PPROF): "maybe" is neither true nor false`) {
		t.Fatalf("PGGUARD_PPROF=maybe: %v", err)
	}
}
