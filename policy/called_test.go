package policy

import (
	"context"
	"testing"
)

// calledCatalog answers FunctionBodies with fixed bodies.
type calledCatalog struct {
	fakeCatalog
	bodies map[string]Function
}

func (c *calledCatalog) FunctionBodies(_ context.Context, names []string) ([]Function, bool) {
	var out []Function
	for _, n := range names {
		if f, ok := c.bodies[n]; ok {
			out = append(out, f)
		}
	}
	return out, true
}

// The body of a function a statement calls is judged as part of it, in a
// migration's session and in a Query that holds DDL: its DDL makes the
// call DDL, with the body's locks; an application's lone SELECT f() is
// read for its locks alone.
func TestJudgeCalled(t *testing.T) {
	e, err := NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	cat := &calledCatalog{bodies: map[string]Function{
		"f_alter": {Name: "public.f_alter", Language: "plpgsql", Body: "BEGIN ALTER TABLE t ADD COLUMN note text; END"},
		"f_sql":   {Name: "public.f_sql", Language: "sql", Body: "LOCK TABLE u IN SHARE MODE; SELECT 1"},
		"f_trg":   {Name: "public.f_trg", Language: "plpgsql", Body: "BEGIN ALTER TABLE t ADD COLUMN x int; RETURN NEW; END", Trigger: true},
		"f_self":  {Name: "public.f_self", Language: "sql", Body: "SELECT f_self()"},
		"f_user": {Name: "public.f_user", Language: "plpgsql", Args: []FunctionArg{{Name: "user", Type: "integer"}},
			Body: "BEGIN ALTER TABLE t ADD COLUMN note text; END"},
	}}
	decide := func(q string, migration bool) Decision {
		t.Helper()
		ds, err := e.DecideQuery(context.Background(), q, &Context{Migration: migration, Catalog: cat, Alone: true})
		if err != nil || len(ds) == 0 {
			t.Fatalf("%s: %v", q, err)
		}
		return ds[0].Decision
	}
	d := decide("SELECT f_alter()", true)
	if !d.DDL || d.Lock != LockAccessExclusive || len(d.TableLocks) != 1 || d.TableLocks[0].Table.Name != "t" {
		t.Errorf("SELECT f_alter() in a migration: %+v, want DDL with ACCESS EXCLUSIVE on t", d)
	}
	if d := decide("CALL f_sql()", true); !d.DDL || d.Lock != LockShare {
		t.Errorf("CALL f_sql() in a migration: %+v, want the SHARE of its LOCK TABLE", d)
	}
	// An application's call is read for the locks its body takes (the
	// DDL's lock_timeout and look), not judged by the rules.
	if d := decide("SELECT f_alter()", false); !d.DDL || len(d.TableLocks) != 1 || len(d.Findings) != 0 {
		t.Errorf("SELECT f_alter() alone in an application's session: %+v, want its ALTER's lock and no finding", d)
	}
	if d := decide("SELECT f_self()", false); d.DDL || len(d.Findings) != 0 {
		t.Errorf("SELECT f_self() in an application's session: %+v", d)
	}
	if d := decide("SELECT f_alter(); ALTER TABLE w ADD COLUMN y int", false); !d.DDL || d.Lock != LockAccessExclusive {
		t.Errorf("SELECT f_alter() before DDL in one Query: %+v, want DDL with ACCESS EXCLUSIVE", d)
	}
	if d := decide("SELECT f_trg()", true); d.DDL {
		t.Errorf("a trigger function is not called by a SELECT: %+v", d)
	}
	if d := decide("SELECT f_user(1)", true); !d.DDL || d.Lock != LockAccessExclusive {
		t.Errorf("a function whose argument is named by a reserved word: %+v, want its ALTER read", d)
	}
	if d := decide("SELECT f_self()", true); d.DDL {
		t.Errorf("a function calling itself: %+v", d)
	}
}
