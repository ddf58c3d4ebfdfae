package policy

import (
	"context"
	"strings"
)

// Relation is what the server's catalog says a relation name means, found
// the way the server finds it: a qualified name in its schema, an
// unqualified one along the search_path, the session's temporary schema
// first.
type Relation struct {
	// Exists is false when no relation of that name is found.
	Exists bool
	// Schema is the schema the name resolves to; "pg_temp" for the
	// session's temporary schema, whatever its real name (pg_temp_3).
	Schema string
	// Temporary is true for a temporary relation (relpersistence 't'):
	// no other session can see it.
	Temporary bool
}

// RelationCatalog is an optional Catalog extension: it resolves relation
// names as the server does, so that the transaction's memory and the
// exemptions for temporary relations follow the server's meaning of a name
// rather than its spelling.
type RelationCatalog interface {
	// Relation resolves a possibly qualified relation name (any kind:
	// table, view, index, sequence); ok is false when it cannot say.
	Relation(ctx context.Context, name string) (r Relation, ok bool)
	// CreationSchema is the schema an unqualified CREATE puts a new
	// relation in (current_schema()), "pg_temp" for the temporary one.
	CreationSchema(ctx context.Context) (schema string, ok bool)
}

// IsTempSchema reports whether a schema name is a temporary schema: the
// session's own (pg_temp) or any backend's (pg_temp_N). Relations there are
// temporary by the server's rules, whoever spells the name.
func IsTempSchema(schema string) bool {
	return schema == "pg_temp" || (strings.HasPrefix(schema, "pg_temp_") && isDigits(schema[len("pg_temp_"):]))
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// relation resolves t with the catalog, when the catalog can resolve names
// and an earlier statement of the same Query or batch has not changed what
// names mean (Context.NamesMoved); ok is false otherwise.
func relationOf(ctx context.Context, sc *Context, t Table) (Relation, bool) {
	if sc.Catalog == nil || sc.NamesMoved || t.Name == "" {
		return Relation{}, false
	}
	rc, ok := sc.Catalog.(RelationCatalog)
	if !ok {
		return Relation{}, false
	}
	r, ok := rc.Relation(ctx, t.String())
	if ok && IsTempSchema(r.Schema) {
		r.Schema, r.Temporary = "pg_temp", true
	}
	return r, ok
}

// Relation resolves t the way the server would for this statement; ok is
// false when the catalog cannot say (pgguard lint, no catalog, or an
// earlier statement of the same Query or batch changed names).
func (c *Check) Relation(t Table) (Relation, bool) { return relationOf(c.Ctx, c.Session, t) }

// Missing reports whether the catalog says no relation named t exists: the
// statement then fails on the server (42P01), or with IF EXISTS does
// nothing, and changes nothing of anyone's.
func (c *Check) Missing(t Table) bool {
	if c.Created(t) {
		return false
	}
	r, ok := c.Relation(t)
	return ok && !r.Exists
}

// Temporary reports whether t names a temporary relation, by the server's
// rules: a name in a temporary schema, a table the open transaction
// created temporary, or one the catalog reports temporary (created earlier
// in the session). Nobody else sees a temporary relation, so no rule about
// other sessions applies to it.
func (c *Check) Temporary(t Table) bool {
	return temporary(c.Ctx, c.Session, t)
}

func temporary(ctx context.Context, sc *Context, t Table) bool {
	if t.Name == "" {
		return false
	}
	if IsTempSchema(t.Schema) {
		return true
	}
	if t.Schema == "" && sc.CreatedTables != nil && sc.CreatedTables("pg_temp", t.Name) {
		// A temporary table created in this transaction: an unqualified
		// name finds it first.
		return true
	}
	r, ok := relationOf(ctx, sc, t)
	return ok && r.Exists && r.Temporary
}

// createdIn reports whether t was created in the open transaction, by
// identity where the catalog can resolve the name: a table created in
// another schema does not exempt the table an unqualified name finds.
func createdIn(ctx context.Context, sc *Context, t Table) bool {
	return remembered(ctx, sc, sc.CreatedTables, t)
}

// exclusiveIn reports whether the open transaction holds an ACCESS
// EXCLUSIVE lock on t as far as its memory knows, by identity where the
// catalog can resolve the name.
func exclusiveIn(ctx context.Context, sc *Context, t Table) bool {
	return remembered(ctx, sc, sc.ExclusiveTables, t)
}

// remembered looks t up in one of the memory's lists (in, which matches an
// unqualified name on either side with any schema). The spelling is looked
// up first, which costs nothing and rules most names out; then the name
// the server resolves t to decides. Without the server's answer, an
// unqualified name means the table in the temporary schema or in the
// schema new tables go to (public, for pgguard lint).
func remembered(ctx context.Context, sc *Context, in func(schema, table string) bool, t Table) bool {
	if in == nil || t.Name == "" || !in(t.Schema, t.Name) {
		return false
	}
	if r, ok := relationOf(ctx, sc, t); ok {
		return r.Exists && in(r.Schema, t.Name)
	}
	if t.Schema != "" {
		return true
	}
	return in("pg_temp", t.Name) || in(creationSchema(ctx, sc), t.Name)
}

// creationSchema is the schema an unqualified CREATE puts a table in:
// the catalog's answer, else public (the default search_path's).
func creationSchema(ctx context.Context, sc *Context) string {
	if rc, ok := sc.Catalog.(RelationCatalog); ok {
		if s, ok := rc.CreationSchema(ctx); ok && s != "" {
			if IsTempSchema(s) {
				return "pg_temp"
			}
			return s
		}
	}
	return "public"
}

// resolvedName returns t with the schema the server resolves it to, when
// the catalog can say; t as written otherwise. The memory records names
// this way, so that what it remembers is the relation, not the spelling.
func resolvedName(ctx context.Context, sc *Context, t Table) Table {
	if t.Schema != "" {
		if IsTempSchema(t.Schema) {
			t.Schema = "pg_temp"
		}
		return t
	}
	if r, ok := relationOf(ctx, sc, t); ok && r.Exists {
		t.Schema = r.Schema
	}
	return t
}

// nobodyElses reports whether a report's relation is one no other session
// can be harmed through: a temporary relation, or one the catalog says does
// not exist (the server then fails the statement, or with IF EXISTS does
// nothing, and answers the client itself).
//
// Not for a statement in a function body or DO block (Check.Nested): a
// function runs later, in whatever session calls it, when a relation
// missing now may exist.
func (c *Check) nobodyElses(t Table) bool {
	if t.Name == "" || c.Nested {
		return false
	}
	return c.Temporary(t) || c.Missing(t)
}

// LockCatalog is an optional Catalog extension: it asks the server which
// ACCESS EXCLUSIVE locks the session's transaction holds, which the memory
// of the transaction only approximates (locks taken through partitions,
// views and indexes; savepoints it did not see).
type LockCatalog interface {
	// HoldsAccessExclusive reports whether the transaction holds an ACCESS
	// EXCLUSIVE lock on table, on a partition or inheritance child of it,
	// or, for a view, on a relation the view reads.
	HoldsAccessExclusive(ctx context.Context, table string) (held, ok bool)
}

// HoldsExclusive reports whether the open transaction holds an ACCESS
// EXCLUSIVE lock on t (or on what changing t's rows touches): the server's
// answer where the catalog can ask it, the memory's otherwise. The server
// is asked only when the memory knows of some such lock, and only right
// before a data-changing statement, which takes its own snapshot at its
// start anyway.
func (c *Check) HoldsExclusive(t Table) bool {
	named := exclusiveIn(c.Ctx, c.Session, t)
	if !named && !HoldsExclusive(c.Session) {
		return false
	}
	// After DDL earlier in the same Query or batch, the server's answer
	// would predate the locks that DDL takes.
	if lc, ok := c.Session.Catalog.(LockCatalog); ok && t.Name != "" && !c.Session.NamesMoved {
		if held, ok := lc.HoldsAccessExclusive(c.Ctx, t.String()); ok {
			return held
		}
	}
	return named
}
