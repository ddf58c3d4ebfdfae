package policy

import (
	"context"
	"github.com/pgguard/pgguard/policy/sqltext"
	"testing"
)

// The memory follows savepoints: what was done after one is forgotten when
// the transaction rolls back to it, nested savepoints and names set twice
// included; RELEASE keeps what was done.
func TestTxMemoryFollowsSavepoints(t *testing.T) {
	t.Parallel()
	sp := func(k SavepointKind, name string) TxEffect {
		return TxEffect{Savepoint: &SavepointOp{Kind: k, Name: name}}
	}
	lock := func(name string) TxEffect { return TxEffect{Exclusive: []Table{{Schema: "public", Name: name}}} }
	create := func(name string) TxEffect { return TxEffect{Creates: []Table{{Schema: "public", Name: name}}} }
	var m TxMemory
	m.Apply(create("fresh"), sp(SavepointSet, "s"), lock("big"))
	if !m.Exclusive("", "big") || !m.Created("", "fresh") {
		t.Fatal("lock or created table not remembered")
	}
	m.Apply(sp(SavepointRollback, "s"))
	if m.Exclusive("", "big") || m.Exclusive("", "") || !m.Created("", "fresh") {
		t.Fatal("ROLLBACK TO s: the lock taken after s must be forgotten, the table created before kept")
	}
	// The savepoint stays after ROLLBACK TO; nested ones and a name set twice.
	m.Apply(lock("a"), sp(SavepointSet, "inner"), create("t1"), sp(SavepointSet, "s"), lock("b"), sp(SavepointRelease, "inner"))
	if !m.Exclusive("", "b") || !m.Created("", "t1") {
		t.Fatal("RELEASE must keep what was done")
	}
	m.Apply(sp(SavepointRollback, "s"))
	// RELEASE inner also ended the second s, set after it (as in
	// PostgreSQL): ROLLBACK TO s goes back to the first s.
	if m.Exclusive("", "a") || m.Exclusive("", "b") || m.Created("", "t1") || !m.Created("", "fresh") {
		t.Fatal("ROLLBACK TO s must roll back to the first s: RELEASE inner ended the second")
	}
	// pgjdbc autosave: the same name before every statement.
	m.Reset()
	m.Apply(sp(SavepointSet, "pgjdbc_autosave"), lock("x"), sp(SavepointSet, "pgjdbc_autosave"), lock("y"), sp(SavepointRollback, "pgjdbc_autosave"))
	if !m.Exclusive("", "x") || m.Exclusive("", "y") {
		t.Fatal("a savepoint set again under the same name: ROLLBACK TO goes to the latest")
	}
	// A savepoint pgguard never saw: created tables are forgotten, locks
	// become locks on unnamed relations (the server is asked).
	m.Apply(create("t2"), sp(SavepointRollback, "unseen"))
	if m.Created("", "t2") || m.Exclusive("", "x") || !m.Exclusive("", "") {
		t.Fatal("ROLLBACK TO an unknown savepoint must forget created tables and keep locks as unnamed ones")
	}
	// A savepoint set before pgguard looked (the memory was empty), a
	// later one it saw, then ROLLBACK TO the first: the later one is gone
	// on the server; rolling back to it must not bring back what was
	// forgotten.
	m.Reset()
	m.Apply(create("t3"), sp(SavepointSet, "b"), sp(SavepointRollback, "unseen"), sp(SavepointRollback, "b"))
	if m.Created("", "t3") {
		t.Fatal("a table forgotten at ROLLBACK TO an unknown savepoint came back")
	}
	// A lock on unnamed relations counts for "any", not for a name.
	m.Reset()
	m.Apply(TxEffect{ExclusiveUnnamed: true})
	if !m.Exclusive("", "") || m.Exclusive("", "big") || !m.Active() {
		t.Fatal("an unnamed lock: any, not a name")
	}
}

// What the later statements of a batch see: the earlier ones' effects, until
// another batch is judged.
func TestTxMemoryBatch(t *testing.T) {
	t.Parallel()
	var m TxMemory
	if m.Batch(7) {
		t.Fatal("a new batch has no DDL")
	}
	m.Expect(7, true, TxEffect{Exclusive: []Table{{Name: "big"}}})
	if !m.Batch(7) || !m.Exclusive("", "big") {
		t.Fatal("the batch's later statements must see its earlier ones")
	}
	if m.Batch(0); m.Exclusive("", "big") || m.Active() {
		t.Fatal("another batch must not see it")
	}
}

// CREATE ... IF NOT EXISTS of a table that exists creates nothing, and
// the memory must not take it as new: DROP TABLE of it is refused. The
// created table is named by the schema it goes to.
func TestIfNotExistsCreatesNothing(t *testing.T) {
	t.Parallel()
	e, err := NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cat := newFakeCatalog()
	cat.creationSchema = "public"
	cat.relations["public.accounts"] = Relation{Exists: true, Schema: "public"}
	cat.relations["accounts"] = Relation{Exists: true, Schema: "public"}
	cat.relations["public.fresh"] = Relation{}
	for _, tc := range []struct {
		sql  string
		cat  Catalog
		want []string
	}{
		{"CREATE TABLE IF NOT EXISTS accounts (id int)", cat, nil},
		{"CREATE TABLE IF NOT EXISTS accounts AS SELECT 1 AS id", cat, nil},
		{"CREATE TABLE IF NOT EXISTS fresh (id int)", cat, []string{"public.fresh"}},
		{"CREATE TABLE fresh (id int)", cat, []string{"public.fresh"}},
		{"CREATE TABLE other.fresh (id int)", cat, []string{"other.fresh"}},
		{"CREATE TEMP TABLE IF NOT EXISTS accounts (id int)", cat, nil}, // unknown in the fake: not taken as new
		// Without a catalog, whether IF NOT EXISTS created anything is unknown.
		{"CREATE TABLE IF NOT EXISTS fresh (id int)", nil, nil},
		{"CREATE TABLE fresh (id int)", nil, []string{"fresh"}},
	} {
		ds, _ := e.DecideQuery(ctx, tc.sql, &Context{Alone: true, InTransaction: true, Catalog: tc.cat})
		got := ds[0].Decision.CreatesTables
		if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
			t.Errorf("%s (catalog %v): CreatesTables = %q, want %q", tc.sql, tc.cat != nil, got, tc.want)
		}
	}
	// The Query of the bug: nothing created, so the DROP is refused.
	ds, _ := e.DecideQuery(ctx, "CREATE TABLE IF NOT EXISTS accounts (id int); DROP TABLE accounts", &Context{Alone: true, InTransaction: true, Catalog: cat})
	if ds[1].Decision.Action != Reject {
		t.Fatalf("DROP TABLE after an IF NOT EXISTS that created nothing: %v, want reject", ds[1].Decision.Action)
	}
}

// Savepoint statements are parsed only while the memory holds something;
// then the decision carries the savepoint.
func TestSavepointDecisions(t *testing.T) {
	t.Parallel()
	e, err := NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	var m TxMemory
	sc := &Context{Alone: true, InTransaction: true, CreatedTables: m.Created, ExclusiveTables: m.Exclusive, Remembers: m.Active}
	d := e.Decide(context.Background(), sqltext.Statement{Text: "SAVEPOINT s"}, sc)
	if d.Savepoint != nil {
		t.Fatal("a savepoint of a transaction with an empty memory needs no parse")
	}
	m.Apply(TxEffect{Exclusive: []Table{{Name: "big"}}})
	for sql, want := range map[string]SavepointOp{
		"SAVEPOINT s":                       {SavepointSet, "s"},
		`savepoint "S"`:                     {SavepointSet, "S"},
		"RELEASE SAVEPOINT s":               {SavepointRelease, "s"},
		"RELEASE s":                         {SavepointRelease, "s"},
		"ROLLBACK TO SAVEPOINT PGJDBC_AUTO": {SavepointRollback, "pgjdbc_auto"},
		"ROLLBACK WORK TO s":                {SavepointRollback, "s"},
	} {
		d := e.Decide(context.Background(), sqltext.Statement{Text: sql}, sc)
		if d.Savepoint == nil || *d.Savepoint != want {
			t.Errorf("%s: Savepoint = %+v, want %+v", sql, d.Savepoint, want)
		}
	}
}

// askingCatalog is a recordingCatalog that also resolves names and answers
// lock questions: every question is recorded.
type askingCatalog struct{ recordingCatalog }

func (c *askingCatalog) Relation(_ context.Context, name string) (Relation, bool) {
	c.record("Relation", name)
	return Relation{Exists: true, Schema: "public"}, true
}

func (c *askingCatalog) CreationSchema(context.Context) (string, bool) {
	c.record("CreationSchema")
	return "public", true
}

func (c *askingCatalog) HoldsAccessExclusive(_ context.Context, table string) (bool, bool) {
	c.record("HoldsAccessExclusive", table)
	return true, true
}

// No question reaches the server before a statement that takes no snapshot
// (LOCK, SAVEPOINT, RELEASE, ROLLBACK TO, SET, SHOW): on the client's
// connection it would take the transaction's snapshot (REPEATABLE READ)
// before the lock is granted. Even while the memory holds locks and tables.
func TestNoQuestionBeforeSnapshotFreeStatements(t *testing.T) {
	t.Parallel()
	e, err := NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	var m TxMemory
	m.Apply(TxEffect{Creates: []Table{{Schema: "public", Name: "fresh"}}, Exclusive: []Table{{Schema: "public", Name: "big"}}, ExclusiveUnnamed: true})
	cat := &askingCatalog{}
	sc := &Context{Alone: true, InTransaction: true, Catalog: cat,
		CreatedTables: m.Created, ExclusiveTables: m.Exclusive, Remembers: m.Active}
	for _, sql := range []string{
		"LOCK TABLE big IN ACCESS EXCLUSIVE MODE",
		"LOCK big, fresh",
		"SAVEPOINT s",
		"RELEASE SAVEPOINT s",
		"ROLLBACK TO SAVEPOINT s",
		"SET LOCAL search_path = app, public",
		"SHOW lock_timeout",
	} {
		e.Decide(context.Background(), sqltext.Statement{Text: sql}, sc)
		if asked := cat.take(); len(asked) > 0 {
			t.Errorf("%s: the catalog was asked %q", sql, asked)
		}
	}
	// A data-changing statement takes its snapshot at its start anyway:
	// the server is asked about the lock right before it.
	e.Decide(context.Background(), sqltext.Statement{Text: "UPDATE big SET note = 'x' WHERE id = 1"}, sc)
	if asked := cat.take(); len(asked) == 0 {
		t.Error("UPDATE under an exclusive lock: the server was not asked which locks the transaction holds")
	}
}

// In one Query, the later statements see what the earlier ones did,
// savepoints included.
func TestDecideQueryFollowsSavepoints(t *testing.T) {
	t.Parallel()
	e, err := NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := &Context{Alone: true, InTransaction: true}
	for q, want := range map[string]Action{
		"LOCK TABLE big IN ACCESS EXCLUSIVE MODE; UPDATE big SET note = 'x' WHERE id < 1000":                                       Reject,
		"SAVEPOINT s; LOCK TABLE big IN ACCESS EXCLUSIVE MODE; ROLLBACK TO SAVEPOINT s; UPDATE big SET note = 'x' WHERE id < 1000": Allow,
		"SAVEPOINT s; LOCK TABLE big IN ACCESS EXCLUSIVE MODE; RELEASE SAVEPOINT s; UPDATE big SET note = 'x' WHERE id < 1000":     Reject,
		"SAVEPOINT s; CREATE TABLE big (id int); ROLLBACK TO s; DROP TABLE big":                                                    Reject,
		"CREATE TABLE fresh (id int); SAVEPOINT s; ROLLBACK TO s; DROP TABLE fresh":                                                Allow,
	} {
		ds, _ := e.DecideQuery(context.Background(), q, sc)
		if got := ds[len(ds)-1].Decision.Action; got != want {
			t.Errorf("%s: the last statement %v, want %v", q, got, want)
		}
	}
}

// A name created in the transaction stops naming a new table when it is
// dropped, renamed or moved to another schema (a view of a big table may
// take it next); the new table's new name is new; ROLLBACK TO brings the
// old state back; DROP SCHEMA forgets its tables. The statements that
// move names are read from SQL by movedRelations.
func TestTxMemoryForgetsMovedNames(t *testing.T) {
	t.Parallel()
	effect := func(sql string) TxEffect {
		t.Helper()
		res, err := sqltext.PgParse(sql)
		if err != nil {
			t.Fatal(err)
		}
		e := TxEffect{Moves: movedRelations(res.Stmts[0].Stmt)}
		if len(e.Moves) == 0 {
			t.Fatalf("%s: no relation moved", sql)
		}
		return e
	}
	create := func(schema, name string) TxEffect { return TxEffect{Creates: []Table{{Schema: schema, Name: name}}} }
	sp := func(k SavepointKind) TxEffect { return TxEffect{Savepoint: &SavepointOp{Kind: k, Name: "s"}} }
	for _, c := range []struct {
		sql          string
		gone, newNam Table
	}{
		{"DROP TABLE x", Table{Name: "x"}, Table{}},
		{"DROP TABLE IF EXISTS public.x, y CASCADE", Table{Schema: "public", Name: "x"}, Table{}},
		{"ALTER TABLE x RENAME TO x_old", Table{Name: "x"}, Table{Name: "x_old"}},
		{"ALTER INDEX x RENAME TO x_old", Table{Name: "x"}, Table{Name: "x_old"}},
		{"ALTER TABLE public.x SET SCHEMA other", Table{Schema: "public", Name: "x"}, Table{Schema: "other", Name: "x"}},
		{"DROP SCHEMA public CASCADE", Table{Schema: "public", Name: "x"}, Table{}},
	} {
		var m TxMemory
		m.Apply(create("public", "x"), sp(SavepointSet), effect(c.sql))
		if m.Created(c.gone.Schema, c.gone.Name) || m.Created("public", "x") {
			t.Errorf("%s: x is still taken as created in the transaction", c.sql)
		}
		if c.newNam.Name != "" && !m.Created(c.newNam.Schema, c.newNam.Name) {
			t.Errorf("%s: the new table's new name %s is not new", c.sql, c.newNam)
		}
		// A view (or a table that exists) takes the name: not created.
		if m.Created("", "x") {
			t.Errorf("%s: unqualified x still created", c.sql)
		}
		m.Apply(sp(SavepointRollback))
		if !m.Created("public", "x") {
			t.Errorf("%s rolled back to its savepoint: x is new again", c.sql)
		}
		// Created again after the move: new again.
		m.Apply(effect(c.sql), create("public", "x"))
		if !m.Created("", "x") {
			t.Errorf("%s, then CREATE TABLE x: x is new", c.sql)
		}
	}
	// A batch's expected moves count before the server answers, and an
	// inner (Query) memory's "gone" is known, so it overrides the outer.
	var m TxMemory
	m.Apply(create("public", "x"))
	m.Expect(7, true, effect("DROP TABLE x"))
	if m.Created("", "x") {
		t.Error("a DROP expected earlier in the batch: x is still new")
	}
	if _, known := m.CreatedKnown("", "x"); !known {
		t.Error("a dropped name must be known to the memory")
	}
}
