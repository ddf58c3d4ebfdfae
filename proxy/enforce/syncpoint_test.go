package enforce

import (
	"github.com/pgguard/pgguard/policy/sqltext"
	"time"

	"strings"
	"testing"

	"github.com/pgguard/pgguard/internal/wire"
	"github.com/pgguard/pgguard/policy"
)

func TestSyncQueue(t *testing.T) {
	var q syncQueue
	if q.head(1) != nil {
		t.Fatal("head of an empty queue")
	}
	a := &syncPoint{seq: 2, done: make(chan struct{})}
	b := &syncPoint{seq: 5}
	q.push(a)
	q.push(b)
	if q.head(1) != nil || q.head(5) != nil {
		t.Fatal("head answers for a sync point that is not first")
	}
	if q.head(2) != a {
		t.Fatal("head(2) is not the first sync point")
	}
	q.pop()
	if q.head(5) != b {
		t.Fatal("head(5) after pop")
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "out of order") {
				t.Fatalf("recover() = %v, want the out-of-order panic", r)
			}
		}()
		q.push(&syncPoint{seq: 5})
	}()
	c := &syncPoint{seq: 7, done: make(chan struct{})}
	q.push(c)
	q.drain()
	select {
	case <-c.done:
		if !c.out.closed {
			t.Fatal("drained sync point's outcome is not closed")
		}
	default:
		t.Fatal("drain left a waiter waiting")
	}
	if q.n.Load() != 0 || q.head(5) != nil {
		t.Fatal("queue not empty after drain")
	}
}

func TestCommandTag(t *testing.T) {
	for in, want := range map[string]string{
		"INSERT 0 5":   "INSERT",
		"SELECT 1":     "SELECT",
		"CREATE INDEX": "CREATE INDEX",
		"COPY 100":     "COPY",
		"":             "",
	} {
		if got := commandTag(in); got != want {
			t.Errorf("commandTag(%q) = %q, want %q", in, got, want)
		}
	}
}

// A FATAL without detail that arrives during a concurrent build names the
// index the build may leave; anything else passes unchanged.
func TestWithBuildCutOff(t *testing.T) {
	body := func(e *wire.PGError) []byte { return e.Encode(nil, false)[5:] }
	fatal := body(&wire.PGError{Severity: "FATAL", Code: "57P01", Message: "terminating connection"})
	m := &Machine{}
	if got := m.withBuildCutOff(fatal); string(got) != string(fatal) {
		t.Fatal("changed with no build in flight")
	}
	index := `public."Idx"`
	m.buildingIndex.Store(&index)
	code, msg := wire.ErrorFields(m.withBuildCutOff(fatal))
	if code != "57P01" || msg != "terminating connection" {
		t.Fatalf("fields %q %q", code, msg)
	}
	if got := m.withBuildCutOff(fatal); !strings.Contains(string(got), "DROP INDEX CONCURRENTLY IF EXISTS "+index) {
		t.Fatalf("no hint naming the index: %q", got)
	}
	for _, e := range []*wire.PGError{
		{Severity: "ERROR", Code: "42P07", Message: "exists"},
		{Severity: "FATAL", Code: "57P01", Message: "bye", Detail: "the server's own"},
	} {
		b := body(e)
		if got := m.withBuildCutOff(b); string(got) != string(b) {
			t.Errorf("%s %s changed: %q", e.Severity, e.Code, got)
		}
	}
	if d, h, ok := m.CutOff(); !ok || !strings.Contains(d, index) || !strings.Contains(h, index) {
		t.Fatalf("CutOff() = %q, %q, %v", d, h, ok)
	}
}

func TestConcurrentIndexName(t *testing.T) {
	v := func(sql, rewritten string) *verdict {
		return &verdict{rewritten: rewritten, decisions: []policy.StatementDecision{{Statement: sqltext.Statement{Text: sql}}}}
	}
	for _, c := range []struct {
		v    *verdict
		want string
	}{
		{v("CREATE INDEX big_note ON big (note)", "CREATE INDEX CONCURRENTLY big_note ON big (note)"), "big_note"},
		{v(`CREATE INDEX CONCURRENTLY "Odd Name" ON app.big (note)`, ""), `app."Odd Name"`},
		{v("CREATE INDEX CONCURRENTLY ON big (note)", ""), ""}, // no name
		{v("CREATE INDEX big_note ON big (note)", ""), ""},     // not concurrent
		{v("SELECT pg_advisory_lock(1)", ""), ""},
		{&verdict{}, ""},
	} {
		if got := concurrentIndexName(c.v); got != c.want {
			t.Errorf("concurrentIndexName(%+v) = %q, want %q", c.v.decisions, got, c.want)
		}
	}
}

func TestLockTimeoutOrder(t *testing.T) {
	sd := func(text, lock string) policy.StatementDecision {
		return policy.StatementDecision{Statement: sqltext.Statement{Text: text}, Decision: policy.Decision{Lock: lock}}
	}
	set := sd("SET lock_timeout = 0", "")
	alter := sd("ALTER TABLE big ADD COLUMN c int", policy.LockAccessExclusive)
	read := sd("SELECT 1", "")
	for _, c := range []struct {
		name    string
		ds      []policy.StatementDecision
		earlier bool
		refused bool
	}{
		{"alone", []policy.StatementDecision{alter}, false, false},
		{"setting first", []policy.StatementDecision{set, alter}, false, true},
		{"setting after", []policy.StatementDecision{alter, set}, false, false},
		{"setting earlier in the batch", []policy.StatementDecision{alter}, true, true},
		{"nothing blocks writes", []policy.StatementDecision{set, read}, true, false},
		{"a plain value within the maximum first", []policy.StatementDecision{sd("SET lock_timeout = '2s'", ""), alter}, false, false},
		{"a plain value above the maximum first", []policy.StatementDecision{sd("SET lock_timeout = '1h'", ""), alter}, false, true},
	} {
		f := lockTimeoutOrder(c.ds, c.earlier, 10*time.Second)
		if (f != nil) != c.refused {
			t.Errorf("%s: finding %v, want refused %v", c.name, f, c.refused)
		}
		if f != nil && (f.RuleID != "lock-timeout" || f.Action != policy.Reject) {
			t.Errorf("%s: finding %+v", c.name, f)
		}
	}
}

// pgguard's own query goes through its own statement and portal, closed
// first, and ends with a Sync.
func TestInternalMessages(t *testing.T) {
	msgs := internalMessages("SELECT 1")
	var types []byte
	for len(msgs) > 0 {
		if len(msgs) < 5 {
			t.Fatalf("truncated frame %q", msgs)
		}
		n := int(msgs[1])<<24 | int(msgs[2])<<16 | int(msgs[3])<<8 | int(msgs[4])
		body := msgs[5 : 1+n]
		switch wire.ClientMsg(msgs[0]) {
		case wire.ClientParse:
			if string(body) != internalName+"\x00SELECT 1\x00\x00\x00" {
				t.Errorf("Parse body %q", body)
			}
		case wire.ClientBind:
			if !strings.HasPrefix(string(body), internalName+"\x00"+internalName+"\x00") {
				t.Errorf("Bind body %q", body)
			}
		}
		types = append(types, msgs[0])
		msgs = msgs[1+n:]
	}
	if string(types) != "CCPBCECS" {
		t.Fatalf("message types %q, want CCPBCECS", types)
	}
}
