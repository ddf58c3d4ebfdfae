package proxy

import (
	"strings"
	"sync"

	"github.com/pgguard/pgguard/policy"
)

// createdTables remembers what the open transaction did that the policy
// must know about later in it: the tables it created (empty and invisible to
// other sessions, so size rules do not apply) and the constraints it added
// NOT VALID (whose VALIDATE must not follow in the same transaction).
type createdTables struct {
	mu       sync.Mutex
	tables   []tableName
	notValid []policy.NotValidConstraint
}

type tableName struct{ schema, name string }

func splitTableName(s string) tableName {
	// Names come from the policy's parse tree: "schema.name" or "name",
	// double-quoted only where quoting is needed.
	var parts []string
	var cur strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' && quoted && i+1 < len(s) && s[i+1] == '"':
			cur.WriteByte('"')
			i++
		case c == '"':
			quoted = !quoted
		case c == '.' && !quoted:
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	parts = append(parts, cur.String())
	if len(parts) >= 2 {
		return tableName{parts[len(parts)-2], parts[len(parts)-1]}
	}
	return tableName{"", parts[0]}
}

func (c *createdTables) add(names []string) {
	c.mu.Lock()
	for _, n := range names {
		c.tables = append(c.tables, splitTableName(n))
	}
	c.mu.Unlock()
}

func (c *createdTables) addNotValid(ncs []policy.NotValidConstraint) {
	c.mu.Lock()
	c.notValid = append(c.notValid, ncs...)
	c.mu.Unlock()
}

// notValidLock reports whether constraint on t was added NOT VALID in the
// open transaction, and the lock that ADD took.
func (c *createdTables) notValidLock(t policy.Table, constraint string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, nc := range c.notValid {
		if nc.Name == constraint && nc.Table.Name == t.Name && (nc.Table.Schema == "" || t.Schema == "" || nc.Table.Schema == t.Schema) {
			return nc.Lock, true
		}
	}
	return "", false
}

func (c *createdTables) reset() {
	c.mu.Lock()
	c.tables = c.tables[:0]
	c.notValid = c.notValid[:0]
	c.mu.Unlock()
}

// has reports whether schema.table (schema may be empty) was created.
func (c *createdTables) has(schema, table string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.tables {
		if t.name == table && (t.schema == "" || schema == "" || t.schema == schema) {
			return true
		}
	}
	return false
}
