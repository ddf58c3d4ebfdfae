package policy

import (
	"context"
	"github.com/pgguard/pgguard/policy/sqltext"
	"strings"
	"sync"
	"testing"
	"time"
)

var fuzzSeeds = []string{
	"SELECT 1; SELECT 2",
	"CREATE INDEX i ON t (c); ALTER TABLE t ADD COLUMN x uuid DEFAULT gen_random_uuid()",
	"DO $$ BEGIN EXECUTE 'CREATE INDEX i ON t (c)'; END $$",
	"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END",
	"-- pgguard:allow create-index reason=\"x\"\nCREATE INDEX i ON t (c)",
	"SET lock_timeout = 0; SELECT set_config('lock_timeout', '1h', false)",
	"SELECT E'\\'; /* /* */ $a$ $$ \"",
	"WITH r AS (SELECT aid FROM pgbench_accounts WHERE aid = $1) SELECT * FROM r",
	"WITH d AS (DELETE FROM big RETURNING *) SELECT count(*) FROM d",
	"WITH x AS (SELECT 1) SELECT * INTO t2 FROM x",
	"WITH RECURSIVE t(n) AS (VALUES (1) UNION ALL SELECT n + 1 FROM t WHERE n < 9) SELECT sum(n) FROM t",
	`UPDATE "public"."User" SET "name" = $1 WHERE ("public"."User"."id" = $2 AND 1=1) RETURNING "id"`,
	"UPDATE a SET x = 1 WHERE (id = 5 AND y) = false",
	"BEGIN; SELECT * FROM t WHERE id = 1 FOR UPDATE SKIP LOCKED; INSERT INTO h VALUES (1) ON CONFLICT DO NOTHING RETURNING *; COMMIT",
}

func FuzzSplit(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		prev := 0
		for _, s := range sqltext.Split(query) {
			if s.Start < prev || s.End < s.Start || s.End > len(query) || query[s.Start:s.End] != s.Text {
				t.Fatalf("bad positions %d:%d after %d for %q", s.Start, s.End, prev, query)
			}
			if strings.TrimSpace(s.Text) == "" {
				t.Fatalf("empty statement from %q", query)
			}
			prev = s.End
		}
		if len(query) < 4096 {
			checkSplitAgainstParser(t, query)
		}
	})
}

func FuzzDecide(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, false)
	}
	e, err := NewEngine(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, query string, inTx bool) {
		start := time.Now()
		ds, err := e.DecideQuery(context.Background(), query, &Context{InTransaction: inTx, Alone: true})
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > time.Second {
			t.Fatalf("deciding %d bytes took %v: %q", len(query), el, query)
		}
		for _, d := range ds {
			if d.Decision.Action == Rewrite && d.Decision.Rewritten == "" {
				t.Fatalf("rewrite without SQL for %q", query)
			}
			for _, fi := range d.Decision.Findings {
				if fi.Action > d.Decision.Action || fi.Message == "" {
					t.Fatalf("inconsistent finding %+v for %q", fi, query)
				}
			}
		}
		checkPlain(t, e, query, ds)
	})
}

// checkPlain checks the proxy's fast path against DecideQuery: a query
// Plain passes must be one DecideQuery allows untouched, statement for
// statement.
func checkPlain(t *testing.T, e *Engine, query string, ds []StatementDecision) {
	t.Helper()
	n, plain := e.Plain(query)
	if !plain {
		return
	}
	if n != len(ds) {
		t.Fatalf("Plain counts %d statements, DecideQuery %d, in %q", n, len(ds), query)
	}
	for _, d := range ds {
		if d.Decision.DDL || d.Decision.Action != Allow || len(d.Decision.Findings) > 0 {
			t.Fatalf("Plain passes %q, but DecideQuery gives %+v", query, d.Decision)
		}
	}
	// DecideQuery takes the same pre-filter as Plain: the check above
	// only proves they agree. The parsing twin judges every statement in
	// full, so what Plain passes must also be what the rules allow.
	full, err := parsingTwin(e).DecideQuery(context.Background(), query, &Context{Alone: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range full {
		if d.Decision.DDL || d.Decision.Action != Allow || len(d.Decision.Findings) > 0 {
			t.Fatalf("Plain passes %q, but parsed in full it gives %+v", query, d.Decision)
		}
	}
}

var parsingTwins sync.Map // *Engine -> *Engine

// parsingTwin returns an engine with e's configuration that parses and
// judges every statement (alwaysParse).
func parsingTwin(e *Engine) *Engine {
	if tw, ok := parsingTwins.Load(e); ok {
		return tw.(*Engine)
	}
	tw, err := NewEngine(e.cfg)
	if err != nil {
		panic(err)
	}
	tw.alwaysParse = true
	actual, _ := parsingTwins.LoadOrStore(e, tw)
	return actual.(*Engine)
}

// FuzzParseConfig feeds arbitrary bytes to the rules-file loader: it must
// return a config or an error, never panic, every error must carry the file
// name so that a person can find it, and an accepted config must build an
// engine.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("mode: enforce\nrules:\n  create-index: rewrite\n"))
	f.Add([]byte("profiles:\n  - name: uat\n    match: {database: [\"*_uat\"]}\n    mode: warn\n"))
	f.Add([]byte("lock_timeout: 3s\nmax_lock_timeout: 1s\nsize_thresholds: {rows: -1, bytes: 10XB}\n"))
	f.Add([]byte("proxy:\n  targets:\n    - {name: a, listen: ':1', upstream: 'b:2'}\n"))
	f.Add([]byte("&a [*a, *a, *a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data, "fuzz.yaml")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		// What the loader accepts, the engine must accept too: otherwise
		// check-config says ok and serve fails.
		if _, err := NewEngine(cfg); err != nil {
			t.Fatalf("ParseConfig accepted a config that NewEngine refuses: %v", err)
		}
	})
}
