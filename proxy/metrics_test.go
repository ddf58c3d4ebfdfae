package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pgguard/pgguard/internal/observe"
)

// gathered indexes a registry's metrics for assertions.
type gathered []*dto.MetricFamily

func gather(t *testing.T, reg *prometheus.Registry) gathered {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// value sums, over the series of name whose labels include want, the
// counter or gauge value, or for histograms the sample count.
func (g gathered) value(name string, want map[string]string) float64 {
	sum := 0.0
	for _, mf := range g {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func (g gathered) labelValues() []string {
	var out []string
	for _, mf := range g {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				out = append(out, lp.GetName()+"="+lp.GetValue())
			}
		}
	}
	return out
}

// waitFor polls cond until it holds or 5 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// obsRules is the policy of the scripted session: one rule at each level.
const obsRules = `lock_timeout: 200ms
lock_timeout_retries: {attempts: 2, initial_backoff: 50ms, max_backoff: 50ms}
rules:
  rename-column: warn
  set-not-null: reject
  create-index: rewrite
`

// A scripted session through a real PostgreSQL — one allowed, one warned,
// one rejected and one rewritten DDL, a lock_timeout failure after a retry
// and a statement pgguard does not parse (one PostgreSQL 15 would run: its
// column is named with a keyword PostgreSQL 16 reserved) — moves the counters and histograms
// as it should, and the audit log has one JSON line per event with no
// literal in it.
func TestMetricsAndAuditLogOfScriptedSession(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := observe.NewMetrics(reg)
	var logBuf pgtest.SyncBuffer
	audit := observe.NewAuditLog(&logBuf)
	_, addr, counting := guardProxy(t, obsRules, func(c *Config) {
		c.Observer = observe.Observers{m, audit, c.Observer}
	})
	if err := pgExec("guard", "DROP TABLE IF EXISTS obs_small", "CREATE TABLE obs_small (id int PRIMARY KEY, v text)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pgExec("guard", "DROP TABLE IF EXISTS obs_small", "DROP INDEX IF EXISTS obs_big_account")
	})
	ctx := context.Background()
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=obs_test")

	mustExec(t, conn, "ALTER TABLE obs_small ADD COLUMN note text DEFAULT 'secret-value'") // allowed
	mustExec(t, conn, "ALTER TABLE obs_small RENAME COLUMN v TO v2")                       // warned
	_, err := conn.Exec(ctx, "ALTER TABLE big ALTER COLUMN note SET NOT NULL")             // rejected
	wantRefusal(t, err, "set-not-null")
	mustExec(t, conn, "CREATE INDEX obs_big_account ON big (account)") // rewritten
	var s string
	if err := conn.QueryRow(ctx, "SELECT 'secret-value'").Scan(&s); err != nil {
		t.Fatal(err)
	}
	// Held lock: two tries of 200ms, then 55P03 reaches the client.
	holder, err := pgx.Connect(ctx, pg.DSN(pgtest.SuperUser, "guard"))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "LOCK TABLE obs_small IN ACCESS SHARE MODE")
	if _, err := conn.Exec(ctx, "ALTER TABLE obs_small ADD COLUMN extra int"); pgCode(err) != "55P03" {
		t.Fatalf("under a held lock: %v, want 55P03", err)
	}
	mustExec(t, holder, "ROLLBACK")
	if _, err := conn.Exec(ctx, "ALTER TABLE obs_small ADD COLUMN system_user text DEFAULT 'secret-value'"); err == nil {
		t.Fatal("an unparsable ALTER TABLE passed")
	}
	conn.Close(ctx)

	waitFor(t, "the connection to close", func() bool {
		return gather(t, reg).value("pgguard_client_connections_total", nil) == 1 &&
			gather(t, reg).value("pgguard_client_connections_open", nil) == 0
	})
	g := gather(t, reg)
	target := map[string]string{"target": "test"}
	with := func(kv ...string) map[string]string {
		l := map[string]string{"target": "test"}
		for i := 0; i < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		return l
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
		max    float64
	}{
		{"pgguard_decisions_total", with("rule", "set-not-null", "action", observe.DecisionRejected), 1, 1},
		{"pgguard_decisions_total", with("rule", "create-index", "action", observe.DecisionRewritten), 1, 1},
		{"pgguard_decisions_total", with("rule", "rename-column", "action", observe.DecisionWarned), 1, 1},
		{"pgguard_decisions_total", with("rule", "none", "action", observe.DecisionAllowed), 1, 2},
		{"pgguard_decisions_total", with("rule", "parse-error", "action", observe.DecisionRejected), 1, 1},
		{"pgguard_statements_inspected_total", with("class", "ddl"), 6, 6},
		{"pgguard_statements_inspected_total", with("class", "other"), 1, 100},
		{"pgguard_ddl_duration_seconds", with("command", "ALTER TABLE", "outcome", observe.OutcomeSuccess), 2, 2},
		{"pgguard_ddl_duration_seconds", with("command", "CREATE INDEX", "outcome", observe.OutcomeSuccess), 1, 1},
		{"pgguard_ddl_duration_seconds", with("outcome", observe.OutcomeRejected), 2, 2},
		{"pgguard_ddl_duration_seconds", with("outcome", observe.OutcomeLockTimeout), 1, 1},
		{"pgguard_lock_timeout_failures_total", target, 1, 1},
		{"pgguard_lock_timeout_retries_total", target, 1, 1},
		{"pgguard_parse_errors_total", target, 1, 1},
		{"pgguard_concurrent_index_cleanups_total", target, 0, 0},
		{"pgguard_client_connections_total", target, 1, 1},
		{"pgguard_server_connections_total", target, 1, 1},
		{"pgguard_server_connections_open", target, 0, 0},
		{"pgguard_upstream_connect_duration_seconds", target, 1, 1},
		{"pgguard_upstream_connect_failures_total", target, 0, 0},
		{"pgguard_relayed_bytes_total", with("direction", "client_to_server"), 100, 1e6},
		{"pgguard_relayed_bytes_total", with("direction", "server_to_client"), 100, 1e6},
	} {
		if v := g.value(c.name, c.labels); v < c.min || v > c.max {
			t.Errorf("%s%v = %v, want %v..%v", c.name, c.labels, v, c.min, c.max)
		}
	}
	// The DDL histogram's sum moved with its count.
	for _, mf := range g {
		if mf.GetName() == "pgguard_ddl_duration_seconds" {
			for _, m := range mf.GetMetric() {
				if m.Histogram.GetSampleSum() <= 0 {
					t.Errorf("ddl duration series %v has sum %v", m.GetLabel(), m.Histogram.GetSampleSum())
				}
			}
		}
	}
	for _, lv := range g.labelValues() {
		for _, bad := range []string{"secret", "obs_", "big", "ALTER TABLE obs", "(", "'"} {
			if strings.Contains(lv, bad) {
				t.Errorf("label %s carries statement text (%q)", lv, bad)
			}
		}
	}

	// The audit log: one valid JSON line per event, literals replaced.
	counting.mu.Lock()
	events := len(counting.events)
	counting.mu.Unlock()
	lines := strings.Split(strings.TrimSuffix(logBuf.String(), "\n"), "\n")
	if len(lines) != events || events != 6 {
		t.Fatalf("%d audit lines for %d events, want 6:\n%s", len(lines), events, logBuf.String())
	}
	if strings.Contains(logBuf.String(), "secret-value") {
		t.Fatalf("a literal reached the audit log:\n%s", logBuf.String())
	}
	byDecision := map[string][]observe.AuditRecord{}
	for _, l := range lines {
		var rec observe.AuditRecord
		dec := json.NewDecoder(strings.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			t.Fatalf("audit line is not a record: %v\n%s", err, l)
		}
		if rec.Target != "test" || rec.User != pgtest.SuperUser || rec.Database != "guard" || rec.ApplicationName != "obs_test" ||
			!strings.HasPrefix(rec.ClientAddr, "127.0.0.1") || rec.Time.IsZero() || rec.Statement == "" {
			t.Errorf("audit line lacks who/where/what: %s", l)
		}
		byDecision[rec.Decision] = append(byDecision[rec.Decision], rec)
	}
	first := byDecision["allow"]
	if len(first) != 2 || first[0].Statement != "ALTER TABLE obs_small ADD COLUMN note text DEFAULT $1" || first[0].SQLState != "" ||
		first[0].Outcome != observe.OutcomeSuccess || first[0].CommandTag != "ALTER TABLE" || !first[0].DDL || first[0].DurationSeconds <= 0 {
		t.Errorf("allowed DDL: %+v", first)
	}
	if first[1].SQLState != "55P03" || first[1].Outcome != observe.OutcomeLockTimeout {
		t.Errorf("lock-timeout failure: %+v", first[1])
	}
	if w := byDecision["warn"]; len(w) != 1 || fmt.Sprint(w[0].Rules) != "[rename-column]" || w[0].SQLState != "" {
		t.Errorf("warned DDL: %+v", w)
	}
	rw := byDecision["rewrite"]
	if len(rw) != 1 || !rw[0].Rewritten || !strings.Contains(rw[0].RewrittenTo, "CONCURRENTLY") || rw[0].CommandTag != "CREATE INDEX" {
		t.Errorf("rewritten DDL: %+v", rw)
	}
	rj := byDecision["reject"]
	if len(rj) != 2 || rj[0].SQLState != "42501" || rj[0].Outcome != observe.OutcomeRejected || fmt.Sprint(rj[0].Rules) != "[set-not-null]" {
		t.Fatalf("rejected DDL: %+v", rj)
	}
	if rj[1].Statement != observe.UnnormalisedStatement || fmt.Sprint(rj[1].Rules) != "[parse-error]" {
		t.Errorf("unparsable DDL: %+v", rj[1])
	}
}

// An upstream that refuses connections counts as a failure, with its
// latency, and the client's session never opens.
func TestMetricsUpstreamConnectFailure(t *testing.T) {
	needPG(t)
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := observe.NewMetrics(reg)
	m.AddTargets("down")
	_, addr := startProxy(t, func(c *Config) {
		c.Targets = []Target{{Name: "down", Listen: "127.0.0.1:0", Upstream: net.JoinHostPort("127.0.0.1", fmt.Sprint(port))}}
		c.Observer = m
	})
	if _, err := pgx.Connect(context.Background(), dsn(addr, pgtest.TrustUser, "")); err == nil {
		t.Fatal("connected through a proxy whose upstream is down")
	}
	g := gather(t, reg)
	down := map[string]string{"target": "down"}
	if g.value("pgguard_upstream_connect_failures_total", down) < 1 || g.value("pgguard_upstream_connect_duration_seconds", down) < 1 ||
		g.value("pgguard_client_connections_total", down) != 0 {
		t.Fatalf("failures %v, connect observations %v, clients %v", g.value("pgguard_upstream_connect_failures_total", down),
			g.value("pgguard_upstream_connect_duration_seconds", down), g.value("pgguard_client_connections_total", down))
	}
}

// A migration tool's session is recognised from its ledger: the audit log
// and pgguard_migrations_total say which tool and which migration, and a
// refusal in autocommit lists what the same migration already committed.
func TestMigrationToolSession(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := observe.NewMetrics(reg)
	var logBuf pgtest.SyncBuffer
	_, addr, _ := guardProxy(t, "", func(c *Config) {
		c.Observer = observe.Observers{m, observe.NewAuditLog(&logBuf)}
	})
	if err := pgExec("guard", `CREATE TABLE IF NOT EXISTS "SequelizeMeta" (name varchar(255) PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", `DROP TABLE IF EXISTS "SequelizeMeta"`, "DROP TABLE IF EXISTS wire_mig") })
	c := rawConnect(t, addr, "guard")
	for _, q := range []string{
		`SELECT "name" FROM "SequelizeMeta" ORDER BY "name"`,
		"CREATE TABLE wire_mig (id bigint)",
		`INSERT INTO "SequelizeMeta" ("name") VALUES ('20260101-create-wire-mig.js') RETURNING "name"`,
		"ALTER TABLE wire_mig ADD COLUMN note text",
	} {
		c.send(&pgproto3.Query{String: q})
		if got := c.until(1); has(got, "ErrorResponse") {
			t.Fatalf("%s: %q", q, got)
		}
	}
	c.send(&pgproto3.Query{String: "ALTER TABLE big ALTER COLUMN account TYPE bigint"})
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	msg, err := c.fe.Receive()
	e, ok := msg.(*pgproto3.ErrorResponse)
	if err != nil || !ok {
		t.Fatalf("%T %v", msg, err)
	}
	if !strings.Contains(e.Detail, "ALTER TABLE wire_mig ADD COLUMN note text") || strings.Contains(e.Detail, "CREATE TABLE wire_mig") {
		t.Fatalf("the refusal's detail should list what this migration committed (only the ALTER, after the ledger record):\n%s", e.Detail)
	}
	c.until(1)
	g := gather(t, reg)
	for outcome, want := range map[string]float64{"applied": 1, "rejected": 1} {
		if got := g.value("pgguard_migrations_total", map[string]string{"tool": "sequelize", "outcome": outcome}); got != want {
			t.Errorf("pgguard_migrations_total{tool=sequelize,outcome=%s} = %v, want %v", outcome, got, want)
		}
	}
	if out := logBuf.String(); !strings.Contains(out, `"tool":"sequelize","migration":"20260101-create-wire-mig.js"`) {
		t.Fatalf("audit log:\n%s", out)
	}
}
