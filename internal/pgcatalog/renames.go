package pgcatalog

import (
	"context"
	"sync"

	"github.com/pgguard/pgguard/policy"
)

// maxRenames bounds the relations a Renames remembers; past it, later
// renames are not remembered (their tables are then looked up in the
// source by their new name only, as before).
const maxRenames = 10000

// Renames remembers the tables renamed (or moved to another schema)
// through pgguard in one database of a borrowing target, for as long as
// pgguard runs: by the relation's OID in that database, the names it had
// before, oldest first. A source that has not run the rename yet (the
// release's migration reaches production last) still has the table by an
// earlier name. Keyed by OID, a name is only ever followed back for the
// relation that had it: a rename that failed or was rolled back leaves
// the table its old name, which the source is asked by directly.
type Renames struct {
	mu    sync.Mutex
	byOID map[string][]policy.Table
}

// NewRenames returns an empty memory.
func NewRenames() *Renames { return &Renames{byOID: map[string][]policy.Table{}} }

func (r *Renames) record(oid string, before policy.Table) {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := r.byOID[oid]
	if len(names) > 0 && names[len(names)-1] == before {
		return // judged again
	}
	if names == nil && len(r.byOID) >= maxRenames {
		return
	}
	r.byOID[oid] = append(names, before)
}

// before lists the names the relation oid had, the latest first.
func (r *Renames) before(oid string) []policy.Table {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := r.byOID[oid]
	out := make([]policy.Table, len(names))
	for i, n := range names {
		out[len(names)-1-i] = n
	}
	return out
}

func (r *Renames) empty() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byOID) == 0
}

// RenameSource is a SizeSource that keeps the Renames of its sessions'
// database (a target's, shared by its sessions).
type RenameSource interface {
	Renames() *Renames
}

// RenamesOf is the memory of renames for a session borrowing from src:
// src's, or a new one of the session's own.
func RenamesOf(src SizeSource) *Renames {
	if rs, ok := src.(RenameSource); ok {
		if r := rs.Renames(); r != nil {
			return r
		}
	}
	return NewRenames()
}

var _ policy.RenameObserver = (*Borrowed)(nil)

// WillRename remembers the name the relation from has now, by its OID in
// the own database, before a statement renames it (policy.RenameObserver).
func (b *Borrowed) WillRename(ctx context.Context, from string, _ policy.Table) {
	if b.Renames == nil || blank(from) {
		return
	}
	rel, ok := b.Catalog.Relation(ctx, from)
	if !ok || !rel.Exists || rel.Temporary {
		return
	}
	oid, ok := b.Catalog.relationOID(from)
	if !ok {
		return
	}
	b.Renames.record(oid, policy.Table{Schema: rel.Schema, Name: policy.ParseTableName(from).Name})
}

// renamedInSource finds, for a relation of the own database that the
// source has no relation of its name for, the relation the source has by
// a name it had before a rename seen through pgguard.
func (b *Borrowed) renamedInSource(s *Sizes, own policy.Table) *SizeRelation {
	if b.Renames == nil || b.Renames.empty() {
		return nil
	}
	oid, ok := b.Catalog.relationOID(own.String())
	if !ok {
		return nil
	}
	for _, t := range b.Renames.before(oid) {
		if r := s.Relation(t.Schema, t.Name); r != nil {
			return r
		}
	}
	return nil
}

// relationOID is the OID of the relation name resolves to.
func (c *Catalog) relationOID(name string) (string, bool) {
	row, ok := c.One("SELECT c.oid::text" + relationFilter(name))
	if !ok || len(row) != 1 || row[0] == nil {
		return "", false
	}
	return *row[0], true
}
