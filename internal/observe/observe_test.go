package observe

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/prometheus/client_golang/prometheus"
)

// StatementsInspected runs for every Query: no allocation once the target
// is known.
func TestMetricsStatementsInspectedDoesNotAllocate(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	m.AddTargets("hot")
	target := strings.Repeat("hot", 1) // not a constant: as from a session
	if n := testing.AllocsPerRun(1000, func() { m.StatementsInspected(target, 1, 3) }); n != 0 {
		t.Fatalf("%v allocations per call", n)
	}
}

func TestMetricsOutcomeAndCommandLabels(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ action, sqlstate, want string }{
		{"allow", "", OutcomeSuccess},
		{"reject", "42501", OutcomeRejected},
		{"allow", "42501", OutcomeError},
		{"rewrite", "55P03", OutcomeLockTimeout},
		{"allow", "57014", OutcomeCanceled},
		{"warn", "23505", OutcomeError},
	} {
		if got := OutcomeClass(c.action, c.sqlstate); got != c.want {
			t.Errorf("OutcomeClass(%s, %s) = %s, want %s", c.action, c.sqlstate, got, c.want)
		}
	}
	for tag, want := range map[string]string{
		"CREATE INDEX": "CREATE INDEX", "INSERT 0 5": "INSERT", "": "none", "SELECT 1": "SELECT",
		"ALTER TABLE": "ALTER TABLE", "x'; DROP": "none", strings.Repeat("A", 100): strings.Repeat("A", 40),
	} {
		if got := commandLabel(tag); got != want {
			t.Errorf("commandLabel(%q) = %q, want %q", tag, got, want)
		}
	}
}

// A statement that cannot be normalised is never logged raw.
func TestAuditLogNeverLogsRawText(t *testing.T) {
	t.Parallel()
	var buf pgtest.SyncBuffer
	a := NewAuditLog(&buf)
	a.Statement(&StatementEvent{Time: time.Now(), Target: "t", SQL: "ALTER TABLE t FROBNICATE 'secret-value'", Action: "reject",
		Rewritten: "CREATE INDEX CONCURRENTLY i ON t (a) WHERE b = 'secret-value'", DDL: true, SQLState: "42501"})
	a.Statement(&StatementEvent{Time: time.Now(), Target: "t", SQL: "UPDATE t SET a = 'secret-value' WHERE id = 42", Action: "warn"})
	out := buf.String()
	if strings.Contains(out, "secret") || strings.Contains(out, "42 ") || strings.Count(out, "\n") != 2 {
		t.Fatalf("audit log:\n%s", out)
	}
	if !strings.Contains(out, UnnormalisedStatement) || !strings.Contains(out, `"rewritten_to":"CREATE INDEX CONCURRENTLY i ON t (a) WHERE b = $1"`) {
		t.Fatalf("audit log:\n%s", out)
	}
	for in, want := range map[string]string{
		"ALTER TABLE t ADD COLUMN n text DEFAULT 'secret'":                                       "ALTER TABLE t ADD COLUMN n text DEFAULT $1",
		"ALTER TABLE t ADD CHECK (x > 5 AND y <> U&'s' AND z = B'1' AND w = X'1F')":              "ALTER TABLE t ADD CHECK (x > 5 AND y <> $1 AND z = $2 AND w = $3)",
		"CREATE TABLE t (v varchar(255) DEFAULT E'it\\'s', i interval DEFAULT interval '1 day')": "CREATE TABLE t (v varchar(255) DEFAULT $1, i interval DEFAULT interval $2)",
		"INSERT INTO t VALUES ($1, 'secret'); COMMENT ON TABLE t IS 'secret'":                    "INSERT INTO t VALUES ($1, $2); COMMENT ON TABLE t IS $3",
		"CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 'secret' $$":                 "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $1",
		// A -- comment comes back as spaces (sqltext.ForPgQuery).
		"ALTER TABLE t ADD COLUMN a int -- password=hunter2\n, ADD COLUMN /* token s3cr */ b int": "ALTER TABLE t ADD COLUMN a int " + strings.Repeat(" ", 19) + "\n, ADD COLUMN /* */ b int",
		// A string continued across a -- comment, one string to
		// PostgreSQL: pg_query alone did not parse it.
		"UPDATE t SET a = 'x' -- c\n'y secret' WHERE id = 1": "UPDATE t SET a = $1 WHERE id = $2",
	} {
		if got := NormaliseSQL(in); got != want {
			t.Errorf("NormaliseSQL(%q) = %q, want %q", in, got, want)
		}
	}
	if NormaliseSQL(strings.Repeat("x", maxNormaliseBytes+1)) != UnnormalisedStatement {
		t.Fatal("an oversized statement was normalised")
	}
}

// recordingRegisterer keeps the collectors registered with it.
type recordingRegisterer struct{ cs []prometheus.Collector }

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	r.cs = append(r.cs, c)
	return nil
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) { r.cs = append(r.cs, cs...) }
func (r *recordingRegisterer) Unregister(prometheus.Collector) bool    { return false }

// Every metric is documented in the README's Observability section, and
// the README lists no metric that does not exist.

func TestMetricsDocumentedInREADME(t *testing.T) {
	t.Parallel()
	rec := &recordingRegisterer{}
	NewMetrics(rec)
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	registered := map[string]bool{}
	for _, c := range rec.cs {
		ch := make(chan *prometheus.Desc, 10)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			registered[fqName.FindStringSubmatch(d.String())[1]] = true
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(readme), "## Observability")
	if i < 0 {
		t.Fatal("README has no Observability section")
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(pgguard_[a-z_]+)` \\|").FindAllStringSubmatch(string(readme[i:]), -1) {
		documented[m[1]] = true
	}
	for name := range registered {
		if !documented[name] {
			t.Errorf("%s is not in the README's metrics table", name)
		}
	}
	for name := range documented {
		if !registered[name] {
			t.Errorf("the README documents %s, which does not exist", name)
		}
	}
}
