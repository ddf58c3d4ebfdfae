package policy

import (
	"context"
	"reflect"
	"testing"
)

func TestCodeNames(t *testing.T) {
	got := codeNames(`SELECT a.f(x), "Q"."T".y FROM s.t JOIN "U" u ON true WHERE g(1) > 0 AND $b$ PERFORM h() $b$ <> 'k(1)'`)
	want := []Table{{Name: "<>"}, {Name: ">"}, {Name: "Q"}, {Name: "U"}, {Name: "a"}, {Name: "g"}, {Name: "h"}, {Name: "perform"}, {Name: "s"},
		{Name: "u"}, {Name: "x"}, {Name: "y"}, {Schema: "Q", Name: "T"}, {Schema: "a", Name: "f"}, {Schema: "s", Name: "t"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("codeNames = %v\nwant %v", got, want)
	}
}

// Operators are names too: their functions run (scan.l's reading of a
// run of operator characters: "=-" is "=" then "-").
func TestCodeNamesOperators(t *testing.T) {
	got := codeNames(`SELECT 1 #~# 2, a=-1, b @-@ c, x::t`)
	want := []Table{{Name: "#~#"}, {Name: "="}, {Name: "@-@"}, {Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "t"}, {Name: "x"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("codeNames = %v\nwant %v", got, want)
	}
}

func TestBodyChangesLockTimeout(t *testing.T) {
	for body, changes := range map[string]bool{
		"BEGIN PERFORM set_config('lock_timeout', '0', false); RETURN 1; END": true,
		"BEGIN SET LOCAL lock_timeout = 0; END":                               true,
		"UPDATE pg_settings SET setting = '0' WHERE name = 'lock_timeout'":    true,
		"BEGIN RESET ALL; END":                                                   true,
		"BEGIN EXECUTE 'SET lock' || '_timeout = 0'; END":                        true,
		"BEGIN EXECUTE format('SET %I = 0', 'lock' || '_timeout'); END":          true,
		"DO $d$ BEGIN EXECUTE x; END $d$":                                        true,
		"BEGIN INSERT INTO audit (executed_at, reset_by) VALUES (now(), 1); END": false,
		"SELECT $1 + 1": false,
	} {
		if got := bodyChangesLockTimeout(body) != ""; got != changes {
			t.Errorf("bodyChangesLockTimeout(%q) = %v, want %v", body, got, changes)
		}
	}
}

// fakeCode is a UserCodeCatalog over a fixed set of functions.
type fakeCode struct {
	Catalog
	fns   map[string]CodeFunction
	asked [][]Table
}

func (f *fakeCode) UserCode(_ context.Context, rels, _ []Table) ([]CodeFunction, bool) {
	f.asked = append(f.asked, rels)
	var out []CodeFunction
	for _, r := range rels {
		if fn, ok := f.fns[r.Name]; ok {
			out = append(out, fn)
		}
	}
	return out, true
}

// TestUserCodeFollowsCalls: the names in a body are asked about in turn;
// a name asked once is not asked again; extension members are not read;
// code in another language is unknown.
func TestUserCodeFollowsCalls(t *testing.T) {
	cat := &fakeCode{fns: map[string]CodeFunction{
		"a":   {Name: "public.a", Language: "sql", Body: "SELECT b() + a()"},
		"b":   {Name: "public.b", Language: "plpgsql", Body: "BEGIN PERFORM c(); RETURN 1; END"},
		"c":   {Name: "public.c", Language: "plpgsql", Body: "BEGIN PERFORM set_config('lock_timeout', '0', false); END"},
		"ext": {Name: "public.ext", Language: "c", Extension: true},
		"py":  {Name: "public.py", Language: "plpython3u", Body: "plpy.execute('SET lock_timeout = 0')"},
		"ok":  {Name: "public.ok", Language: "sql", Body: "SELECT ext(1)"},
	}}
	ctx := context.Background()
	if why := userCodeLockTimeout(ctx, cat, "SELECT a()", nil); why != "it runs function public.c, whose body names set_config" {
		t.Errorf("a: %q", why)
	}
	if len(cat.asked) != 3 {
		t.Errorf("asked %d rounds, want 3 (a; b, a's other name; c): %v", len(cat.asked), cat.asked)
	}
	if why := userCodeLockTimeout(ctx, cat, "SELECT ok()", nil); why != "" {
		t.Errorf("ok: %q", why)
	}
	if why := userCodeLockTimeout(ctx, cat, "SELECT py()", nil); why == "" {
		t.Error("py: a function pgguard cannot read passes")
	}
	memo := map[string]string{}
	cat.asked = nil
	userCodeLockTimeout(ctx, cat, "SELECT ok()", memo)
	userCodeLockTimeout(ctx, cat, "SELECT  ok ( )", memo)
	if len(cat.asked) != 2 {
		t.Errorf("the same names asked again in one Query: %v", cat.asked)
	}
	if why := userCodeLockTimeout(ctx, nil, "SELECT a()", nil); why == "" {
		t.Error("no catalog: a user function's call passes")
	}
	if why := userCodeLockTimeout(ctx, nil, "SELECT count(*) FROM t", nil); why != "" {
		t.Errorf("no catalog, no call: %q", why)
	}
}

// Shapes the server cannot run in TestCallsUserFunctionMatchesServer's
// way (COPY FROM STDIN) or that are no call by construction.
func TestCallsUserFunctionShapes(t *testing.T) {
	for q, want := range map[string]bool{
		"COPY t (a, b) FROM STDIN":       false,
		"COPY public.t (a) FROM STDIN":   false,
		"COPY (SELECT f(1)) TO STDOUT":   true,
		"SELECT 1":                       false,
		"SELECT pg_catalog.now()":        false,
		"SELECT app.now()":               true,
		"CALL p()":                       true,
		"SELECT \"lower\"(v) FROM t":     false,
		"SELECT \"Lower\"(v) FROM t":     true,
		"SELECT x FROM (SELECT 1) t (x)": true, // an alias's column list without AS reads as a call: a question, never a miss
		// Keywords that may name a function: a call where an expression
		// begins, syntax elsewhere.
		"VACUUM (VERBOSE) t":                            false,
		"SELECT 1; VACUUM (ANALYZE) t":                  false,
		"CREATE TABLE t (a int) PARTITION BY RANGE (a)": false,
		"MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id)": false,
		"WITH a AS NOT MATERIALIZED (SELECT 1) SELECT * FROM a":                               false,
		"SELECT CASE WHEN true THEN validate(1) END":                                          true,
		"CALL refresh()":         true,
		"SELECT 1 + validate(1)": true,
		"SELECT cube(1, 2)":      true,
	} {
		if got := CallsUserFunction(q); got != want {
			t.Errorf("CallsUserFunction(%q) = %v, want %v", q, got, want)
		}
	}
}
