package policy

import (
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pgguard/pgguard/policy/sqltext"
)

// TxMemory is what an open transaction did that later statements in it are
// judged by: the tables it created (new and empty, so size rules do not
// apply to them), the constraints it added NOT VALID (whose VALIDATE must
// not follow in the same transaction) and the tables it locked ACCESS
// EXCLUSIVE. It follows the transaction's savepoints: what was done after
// a savepoint is forgotten when the transaction rolls back to it. The
// proxy keeps one per session from the statements the server accepted;
// pgguard lint keeps one per file. Its methods are safe for concurrent use.
type TxMemory struct {
	mu sync.Mutex
	// tables is what happened to relation names in the transaction, in
	// order: created, or gone (dropped, renamed, moved to another
	// schema) — the last event of a name decides.
	tables    []tableEvent
	notValid  []NotValidConstraint
	exclusive []Table
	// unnamed counts the statements that took ACCESS EXCLUSIVE locks on
	// relations they do not name (TxEffect.ExclusiveUnnamed).
	unnamed int
	marks   []txMark // the open savepoints, innermost last

	// The extended-protocol batch being received (its first sync point's
	// number, 0 for none) and what its statements judged so far will do
	// if they succeed: the later statements of the batch are judged
	// before the server has answered any of them.
	batch    uint64
	expected TxEffect
	// expectedTables is the batch's expected tableEvents, in order.
	expectedTables []tableEvent
	batchDDL       bool
}

// tableEvent is a relation name created in the transaction, or one that
// no longer names what it did (gone).
type tableEvent struct {
	Table
	gone bool
}

// TableMove is a relation that leaves its name: dropped (To is zero) or
// renamed or moved to another schema (To is the name it goes by now).
type TableMove struct {
	From, To Table
}

// txMark is a savepoint: how much the memory held when it was set.
type txMark struct {
	name                                 string
	tables, notValid, exclusive, unnamed int
}

// TxEffect is what one statement that succeeded does to the memory of its
// transaction (Decision.Effect).
type TxEffect struct {
	Creates []Table
	// Moves lists the relations the statement drops, renames or moves to
	// another schema: a name created in the transaction no longer names
	// a new table (a view of a big table may take it), and a new
	// table's new name is still new.
	Moves     []TableMove
	NotValid  []NotValidConstraint
	Exclusive []Table
	// ExclusiveUnnamed: the statement locks ACCESS EXCLUSIVE relations it
	// does not name (a partitioned table's partitions, a dropped index's
	// table, a view's), which only the server can list.
	ExclusiveUnnamed bool
	// Savepoint is the statement's savepoint command, if it is one.
	Savepoint *SavepointOp
}

// Empty reports whether the effect changes nothing.
func (e *TxEffect) Empty() bool {
	return len(e.Creates) == 0 && len(e.Moves) == 0 && len(e.NotValid) == 0 && len(e.Exclusive) == 0 && !e.ExclusiveUnnamed && e.Savepoint == nil
}

// SavepointKind is what a savepoint command does.
type SavepointKind uint8

// Savepoint commands.
const (
	SavepointSet SavepointKind = iota + 1
	SavepointRollback
	SavepointRelease
)

// SavepointOp is a SAVEPOINT, ROLLBACK TO SAVEPOINT or RELEASE SAVEPOINT.
type SavepointOp struct {
	Kind SavepointKind
	Name string // as the server folds it
}

// Apply remembers what statements that succeeded did, in their order.
func (m *TxMemory) Apply(effects ...TxEffect) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range effects {
		m.apply(&effects[i])
	}
}

func (m *TxMemory) apply(e *TxEffect) {
	if sp := e.Savepoint; sp != nil {
		m.savepoint(sp)
	}
	m.tables = appendTableEvents(m.tables, nil, e)
	m.notValid = append(m.notValid, e.NotValid...)
	m.exclusive = append(m.exclusive, e.Exclusive...)
	if e.ExclusiveUnnamed {
		m.unnamed++
	}
}

func (m *TxMemory) savepoint(sp *SavepointOp) {
	i := len(m.marks) - 1
	for ; i >= 0 && m.marks[i].name != sp.Name; i-- {
	}
	switch sp.Kind {
	case SavepointSet:
		m.marks = append(m.marks, txMark{name: sp.Name, tables: len(m.tables), notValid: len(m.notValid),
			exclusive: len(m.exclusive), unnamed: m.unnamed})
	case SavepointRelease:
		// The savepoint and every later one end; what they saw stays.
		if i >= 0 {
			m.marks = m.marks[:i]
		}
	case SavepointRollback:
		if i < 0 {
			// A savepoint pgguard did not see set: one set while the
			// memory was empty (then all it knows came later and is
			// undone), or a prepared one run again by a Bind. What is
			// still done, and which later savepoints still exist, is
			// unknown. A table is not taken as new on a guess; a lock
			// becomes one on unnamed relations, which only the server
			// can list (it is asked before a data change).
			locked := len(m.exclusive) > 0 || m.unnamed > 0
			m.tables, m.notValid, m.exclusive, m.marks, m.unnamed = m.tables[:0], m.notValid[:0], m.exclusive[:0], m.marks[:0], 0
			if locked {
				m.unnamed = 1
			}
			return
		}
		// Everything after the savepoint is undone; the savepoint stays.
		// (A mark never counts more than the memory holds: it may have
		// been forgotten since.)
		k := m.marks[i]
		m.tables = m.tables[:min(k.tables, len(m.tables))]
		m.notValid = m.notValid[:min(k.notValid, len(m.notValid))]
		m.exclusive = m.exclusive[:min(k.exclusive, len(m.exclusive))]
		m.unnamed = min(k.unnamed, m.unnamed)
		m.marks = m.marks[:i+1]
	}
}

// Record remembers what a statement that succeeded did.
func (m *TxMemory) Record(creates []string, notValid []NotValidConstraint) {
	e := TxEffect{NotValid: notValid}
	for _, n := range creates {
		e.Creates = append(e.Creates, ParseTableName(n))
	}
	m.Apply(e)
}

// RecordExclusive remembers the ACCESS EXCLUSIVE locks a statement that
// succeeded took (Decision.LocksExclusive).
func (m *TxMemory) RecordExclusive(tables []Table) { m.Apply(TxEffect{Exclusive: tables}) }

// Active reports whether the memory holds anything, confirmed or
// expected of the batch being received; it fits Context.Remembers. While
// it does, the proxy judges every statement (no fast path), so that
// savepoints and data changes are seen.
func (m *TxMemory) Active() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tables) > 0 || len(m.notValid) > 0 || len(m.exclusive) > 0 || m.unnamed > 0 || !m.expected.Empty()
}

// Expect adds what statements of batch, judged but not answered yet, will
// do: Created, Exclusive and NotValidLock count it for the batch's later
// statements (see Batch). ddl says a statement is DDL, after which the
// catalog's answers about names are stale.
func (m *TxMemory) Expect(batch uint64, ddl bool, effects ...TxEffect) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.openBatch(batch)
	m.batchDDL = m.batchDDL || ddl
	for _, e := range effects {
		m.expectedTables = appendTableEvents(m.expectedTables, m.tables, &e)
		m.expected.Creates = append(m.expected.Creates, e.Creates...)
		m.expected.Moves = append(m.expected.Moves, e.Moves...)
		m.expected.NotValid = append(m.expected.NotValid, e.NotValid...)
		m.expected.Exclusive = append(m.expected.Exclusive, e.Exclusive...)
		m.expected.ExclusiveUnnamed = m.expected.ExclusiveUnnamed || e.ExclusiveUnnamed
	}
}

// Batch names the batch whose statement is judged next (0: none, a Query
// of its own); what was expected of another batch is forgotten. It
// reports whether an earlier statement of the batch was DDL
// (Context.NamesMoved).
func (m *TxMemory) Batch(batch uint64) (namesMoved bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.openBatch(batch)
	return m.batchDDL
}

func (m *TxMemory) openBatch(batch uint64) {
	if m.batch != batch {
		m.batch, m.expected, m.expectedTables, m.batchDDL = batch, TxEffect{}, m.expectedTables[:0], false
	}
}

// Exclusive reports whether the open transaction holds an ACCESS
// EXCLUSIVE lock on schema.table, or with table "" on any table; it fits
// Context.ExclusiveTables. A lock on relations no statement named
// (TxEffect.ExclusiveUnnamed) counts only for "any".
func (m *TxMemory) Exclusive(schema, table string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if table == "" {
		return len(m.exclusive) > 0 || m.unnamed > 0 || len(m.expected.Exclusive) > 0 || m.expected.ExclusiveUnnamed
	}
	return TableIn(m.exclusive, schema, table) || TableIn(m.expected.Exclusive, schema, table)
}

// Created reports whether schema.table (schema may be empty) was created in
// the open transaction; it fits Context.CreatedTables.
func (m *TxMemory) Created(schema, table string) bool {
	created, _ := m.CreatedKnown(schema, table)
	return created
}

// CreatedKnown is Created, and whether the memory knows anything of the
// name at all (created, or gone since): a name it does not know is for
// an outer memory to answer.
func (m *TxMemory) CreatedKnown(schema, table string) (created, known bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if created, known = lastTableEvent(m.expectedTables, schema, table); known {
		return created, true
	}
	return lastTableEvent(m.tables, schema, table)
}

// lastTableEvent finds the last event of schema.table in events (an
// unqualified name on either side matches any schema, as TableIn). An
// unqualified name may find a relation in any schema: it is new only
// when the last event of every schema it matches says created.
func lastTableEvent(events []tableEvent, schema, table string) (created, known bool) {
	var decided map[string]bool
	created = true
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		if e.Name == "*" { // DROP SCHEMA: all of its relations
			if e.Schema != schema && schema != "" {
				continue
			}
		} else if !TableIn([]Table{e.Table}, schema, table) {
			continue
		}
		if schema != "" {
			return !e.gone, true
		}
		if decided[e.Schema] {
			continue
		}
		if e.Schema == "" && known {
			// An unqualified event older than what a schema's
			// events said: the name found now is the later one.
			return created, true
		}
		known, created = true, created && !e.gone
		if e.Schema == "" || !created {
			return created, true // an unqualified event stands for every schema
		}
		if decided == nil {
			decided = map[string]bool{}
		}
		decided[e.Schema] = true
	}
	return created && known, known
}

// appendTableEvents adds what e does to names to events: each move makes
// its old name gone and, when the relation was created in the
// transaction (in before or events), its new name new; then what e
// creates.
func appendTableEvents(events, before []tableEvent, e *TxEffect) []tableEvent {
	for _, mv := range e.Moves {
		created, known := lastTableEvent(events, mv.From.Schema, mv.From.Name)
		if !known {
			created, _ = lastTableEvent(before, mv.From.Schema, mv.From.Name)
		}
		events = append(events, tableEvent{Table: mv.From, gone: true})
		if created && mv.To.Name != "" {
			events = append(events, tableEvent{Table: mv.To})
		}
	}
	for _, t := range e.Creates {
		events = append(events, tableEvent{Table: t})
	}
	return events
}

// NotValidLock reports whether constraint on t was added NOT VALID in the
// open transaction, and the lock that ADD took; it fits
// Context.NotValidConstraints.
func (m *TxMemory) NotValidLock(t Table, constraint string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if lock, ok := FindNotValid(m.notValid, t, constraint); ok {
		return lock, true
	}
	return FindNotValid(m.expected.NotValid, t, constraint)
}

// Reset forgets everything: the transaction ended. What the batch being
// received expects stays: it comes after.
func (m *TxMemory) Reset() {
	m.mu.Lock()
	m.tables = m.tables[:0]
	m.notValid = m.notValid[:0]
	m.exclusive = m.exclusive[:0]
	m.unnamed = 0
	m.marks = m.marks[:0]
	m.mu.Unlock()
}

// endTransaction forgets the locks, NOT VALID constraints and savepoints
// of a transaction that ended inside a Query, and keeps its tables: they
// are still new to the Query's later statements.
func (m *TxMemory) endTransaction() {
	m.mu.Lock()
	m.notValid, m.exclusive, m.unnamed, m.marks = m.notValid[:0], m.exclusive[:0], 0, m.marks[:0]
	m.mu.Unlock()
}

// EndsTransaction reports whether a statement ends the transaction block
// (COMMIT, END, ROLLBACK or ABORT, but not ROLLBACK TO SAVEPOINT).
func EndsTransaction(text string) bool { return endsTransaction(text) }

// BeginsTransaction reports whether a statement opens a transaction block
// (BEGIN or START TRANSACTION; not BEGIN ATOMIC, which is a function body).
func BeginsTransaction(text string) bool {
	t, lx := sqltext.FirstWord(text)
	switch {
	case t.WordIs(text, "start"):
		return true
	case t.WordIs(text, "begin"):
		n := lx.Next()
		for n.Kind == sqltext.TokComment {
			n = lx.Next()
		}
		return !n.WordIs(text, "atomic")
	}
	return false
}

// NotValidConstraint is a constraint a statement adds NOT VALID, and the
// lock that statement takes on its table.
type NotValidConstraint struct {
	Table Table
	Name  string
	Lock  string
}

// notValidAdds returns the CHECK and FOREIGN KEY constraints an ALTER
// TABLE adds NOT VALID (unnamed ones under the name PostgreSQL gives them,
// as far as pgguard can tell).
func NotValidAdds(n *pg_query.Node) []NotValidConstraint {
	t, cmds := AlterTableCmds(n)
	var out []NotValidConstraint
	lock := ""
	for _, cmd := range cmds {
		lock = strongerLock(lock, alterTableLock(cmd))
	}
	for _, cmd := range cmds {
		k := cmd.GetDef().GetConstraint()
		if cmd.Subtype != pg_query.AlterTableType_AT_AddConstraint || k == nil || !k.SkipValidation {
			continue
		}
		out = append(out, NotValidConstraint{Table: t, Name: ConstraintNameOf(t, k, ""), Lock: lock})
	}
	return out
}

// findNotValid looks a constraint up in list; an unqualified table name on
// either side matches any schema.
func FindNotValid(list []NotValidConstraint, t Table, name string) (string, bool) {
	for _, c := range list {
		if c.Name == name && TableIn([]Table{c.Table}, t.Schema, t.Name) {
			return c.Lock, true
		}
	}
	return "", false
}

// endsTransaction reports whether a statement ends the transaction block
// (COMMIT, END, ROLLBACK or ABORT, but not ROLLBACK TO SAVEPOINT).
func endsTransaction(text string) bool {
	for _, kw := range []string{"commit", "end", "abort"} {
		if sqltext.FirstWordIs(text, kw) {
			return true
		}
	}
	return sqltext.FirstWordIs(text, "rollback") && !sqltext.ContainsFold(text, " to ")
}
