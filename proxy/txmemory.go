package proxy

import (
	"sync"

	"github.com/pgguard/pgguard/policy"
)

// txMemory remembers what the open transaction did that the policy must
// know about later in it: the tables it created (empty and invisible to
// other sessions, so size rules do not apply) and the constraints it added
// NOT VALID (whose VALIDATE must not follow in the same transaction).
type txMemory struct {
	mu       sync.Mutex
	tables   []policy.Table
	notValid []policy.NotValidConstraint
}

// addTables remembers tables created, named as decisions name them.
func (m *txMemory) addTables(names []string) {
	m.mu.Lock()
	for _, n := range names {
		m.tables = append(m.tables, policy.ParseTableName(n))
	}
	m.mu.Unlock()
}

func (m *txMemory) addNotValid(ncs []policy.NotValidConstraint) {
	m.mu.Lock()
	m.notValid = append(m.notValid, ncs...)
	m.mu.Unlock()
}

// created reports whether schema.table (schema may be empty) was created
// in the open transaction.
func (m *txMemory) created(schema, table string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return policy.TableIn(m.tables, schema, table)
}

// notValidLock reports whether constraint on t was added NOT VALID in the
// open transaction, and the lock that ADD took.
func (m *txMemory) notValidLock(t policy.Table, constraint string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, nc := range m.notValid {
		if nc.Name == constraint && policy.TableIn([]policy.Table{nc.Table}, t.Schema, t.Name) {
			return nc.Lock, true
		}
	}
	return "", false
}

// reset forgets everything: the transaction ended.
func (m *txMemory) reset() {
	m.mu.Lock()
	m.tables = m.tables[:0]
	m.notValid = m.notValid[:0]
	m.mu.Unlock()
}
