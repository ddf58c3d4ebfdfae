package policy

import "sync"

// TxMemory is what an open transaction did that later statements in it are
// judged by: the tables it created (new and empty, so size rules do not
// apply to them) and the constraints it added NOT VALID (whose VALIDATE
// must not follow in the same transaction). The proxy keeps one per session
// from the statements the server accepted; pgguard lint keeps one per file.
// Its methods are safe for concurrent use.
type TxMemory struct {
	mu        sync.Mutex
	tables    []Table
	notValid  []NotValidConstraint
	exclusive []Table
}

// Record remembers what a statement that succeeded did.
func (m *TxMemory) Record(creates []string, notValid []NotValidConstraint) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range creates {
		m.tables = append(m.tables, ParseTableName(n))
	}
	m.notValid = append(m.notValid, notValid...)
}

// RecordExclusive remembers the ACCESS EXCLUSIVE locks a statement that
// succeeded took (Decision.LocksExclusive).
func (m *TxMemory) RecordExclusive(tables []Table) {
	m.mu.Lock()
	m.exclusive = append(m.exclusive, tables...)
	m.mu.Unlock()
}

// Exclusive reports whether the open transaction holds an ACCESS
// EXCLUSIVE lock on schema.table, or with table "" on any table; it fits
// Context.ExclusiveTables.
func (m *TxMemory) Exclusive(schema, table string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if table == "" {
		return len(m.exclusive) > 0
	}
	return TableIn(m.exclusive, schema, table)
}

// Created reports whether schema.table (schema may be empty) was created in
// the open transaction; it fits Context.CreatedTables.
func (m *TxMemory) Created(schema, table string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return TableIn(m.tables, schema, table)
}

// NotValidLock reports whether constraint on t was added NOT VALID in the
// open transaction, and the lock that ADD took; it fits
// Context.NotValidConstraints.
func (m *TxMemory) NotValidLock(t Table, constraint string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return findNotValid(m.notValid, t, constraint)
}

// Reset forgets everything: the transaction ended.
func (m *TxMemory) Reset() {
	m.mu.Lock()
	m.tables = m.tables[:0]
	m.notValid = m.notValid[:0]
	m.exclusive = m.exclusive[:0]
	m.mu.Unlock()
}

// EndsTransaction reports whether a statement ends the transaction block
// (COMMIT, END, ROLLBACK or ABORT, but not ROLLBACK TO SAVEPOINT).
func EndsTransaction(text string) bool { return endsTransaction(text) }

// BeginsTransaction reports whether a statement opens a transaction block
// (BEGIN or START TRANSACTION; not BEGIN ATOMIC, which is a function body).
func BeginsTransaction(text string) bool {
	t, lx := firstWord(text)
	switch {
	case t.wordIs(text, "start"):
		return true
	case t.wordIs(text, "begin"):
		n := lx.next()
		for n.kind == tokComment {
			n = lx.next()
		}
		return !n.wordIs(text, "atomic")
	}
	return false
}
