package policy

import (
	"context"
	"github.com/pgguard/pgguard/policy/sqltext"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Effect is what the statement does to the memory of its transaction once
// it succeeds (TxMemory.Apply).
func (d *Decision) Effect() TxEffect {
	e := TxEffect{NotValid: d.AddsNotValid, Exclusive: d.LocksExclusive, ExclusiveUnnamed: d.LocksUnnamedExclusive, Savepoint: d.Savepoint, Moves: d.MovesTables}
	for _, n := range d.CreatesTables {
		e.Creates = append(e.Creates, ParseTableName(n))
	}
	return e
}

// savepointOp returns the savepoint command a statement is, or nil.
func savepointOp(n *pg_query.Node) *SavepointOp {
	s := n.GetTransactionStmt()
	if s == nil {
		return nil
	}
	switch s.Kind {
	case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		return &SavepointOp{Kind: SavepointSet, Name: s.SavepointName}
	case pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:
		return &SavepointOp{Kind: SavepointRelease, Name: s.SavepointName}
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		return &SavepointOp{Kind: SavepointRollback, Name: s.SavepointName}
	}
	return nil
}

// savepointText reports, without a parse, whether a statement may be a
// SAVEPOINT, RELEASE or ROLLBACK TO: the memory of the transaction must
// see those, however plain they are.
func savepointText(text string) bool {
	t, lx := sqltext.FirstWord(text)
	switch {
	case t.WordIs(text, "savepoint"), t.WordIs(text, "release"):
		return true
	case t.WordIs(text, "rollback"):
		for {
			n := lx.Next()
			switch {
			case n.Kind == sqltext.TokComment, n.WordIs(text, "work"), n.WordIs(text, "transaction"):
				continue
			}
			return n.WordIs(text, "to")
		}
	}
	return false
}

// SourceLacker is an optional Catalog extension of a catalog that knows
// another database's relations by their sizes and nothing of the session's
// own (pgguard lint --sizes with an export): Lacks reports whether that
// database has no relation of that name (in the name's schema when it is
// qualified, in any schema when it is not), so that CREATE TABLE IF NOT
// EXISTS of it creates the table there, as the proxy in front of that
// database finds.
type SourceLacker interface {
	Lacks(ctx context.Context, name string) bool
}

// createdTables lists the tables a statement creates, each named by the
// schema it goes to where the catalog can say, so that the memory keeps
// the relation and not its spelling. A CREATE ... IF NOT EXISTS of a name
// that exists creates nothing (PostgreSQL only says so in a NOTICE): it is
// left out, and so is one whose name the catalog cannot check; that table
// may hold anyone's data. So is one the database the sizes are borrowed
// from has (it exists in production, which the session's judgement stands
// for).
func createdTables(ctx context.Context, sc *Context, n *pg_query.Node, creates []string) []string {
	if len(creates) == 0 {
		return nil
	}
	ifNotExists := false
	switch s := n.GetNode().(type) {
	case *pg_query.Node_CreateStmt:
		ifNotExists = s.CreateStmt.IfNotExists
	case *pg_query.Node_CreateTableAsStmt:
		ifNotExists = s.CreateTableAsStmt.IfNotExists
	}
	out := make([]string, 0, len(creates))
	for _, c := range creates {
		t := ParseTableName(c)
		if t.Schema == "" {
			if s, ok := creationSchemaOf(ctx, sc); ok {
				t.Schema = s
			}
		}
		if ifNotExists {
			if sl, ok := sc.Catalog.(SourceLacker); ok && sl.Lacks(ctx, c) {
				// Judged with another database's sizes alone (lint
				// --sizes), which has no relation of that name: there
				// the statement creates the table.
				out = append(out, c)
				continue
			}
			if t.Schema == "" {
				continue // where it would go is unknown: so is whether it exists
			}
			if r, ok := relationOf(ctx, sc, t); !ok || r.Exists {
				continue
			}
			// Judged with another database's sizes (a target's
			// sizes_from or sizes_file) that has the table: there the
			// statement creates nothing, and what follows it changes
			// that database's rows, as its own sessions are judged.
			if sp, ok := sc.Catalog.(SizeProvenance); ok && sp.SizesFrom(ctx, t.String()) != "" {
				continue
			}
		}
		out = append(out, t.String())
	}
	return out
}

// creationSchemaOf asks the catalog where an unqualified CREATE puts a
// table; ok is false when it cannot say.
func creationSchemaOf(ctx context.Context, sc *Context) (string, bool) {
	rc, ok := sc.Catalog.(RelationCatalog)
	if !ok || sc.NamesMoved {
		return "", false
	}
	s, ok := rc.CreationSchema(ctx)
	if !ok || s == "" {
		return "", false
	}
	if IsTempSchema(s) {
		s = "pg_temp"
	}
	return s, true
}

// locksUnnamedExclusive reports whether a statement takes ACCESS
// EXCLUSIVE locks on relations it does not name, which the memory cannot
// list: DROP INDEX (the index's table), DROP TABLE (tables whose foreign
// keys point to it), DDL on a view, and DDL on a table with partitions or
// inheritance children (theirs), unless ONLY.
func locksUnnamedExclusive(n *pg_query.Node, lock string) bool {
	if lock != LockAccessExclusive {
		return false
	}
	switch s := n.GetNode().(type) {
	case *pg_query.Node_DropStmt, *pg_query.Node_ViewStmt:
		return true
	case *pg_query.Node_AlterTableStmt:
		return s.AlterTableStmt.Relation == nil || s.AlterTableStmt.Relation.Inh || s.AlterTableStmt.Objtype != pg_query.ObjectType_OBJECT_TABLE
	case *pg_query.Node_LockStmt:
		for _, r := range s.LockStmt.Relations {
			if r.GetRangeVar().GetInh() {
				return true
			}
		}
	case *pg_query.Node_TruncateStmt:
		return true
	case *pg_query.Node_RenameStmt:
		return true
	}
	return false
}

// movedRelations lists the relations a statement drops (DROP TABLE, VIEW,
// MATERIALIZED VIEW, FOREIGN TABLE, SEQUENCE, INDEX; every name of a
// schema DROP SCHEMA names), renames (ALTER TABLE/VIEW/INDEX/... RENAME
// TO: ALTER INDEX of a table renames the table) or moves to another
// schema (SET SCHEMA), and the parent an existing table joins (INHERIT,
// ATTACH PARTITION). A statement that fails changes nothing: the memory
// only applies what succeeded.
func movedRelations(n *pg_query.Node) []TableMove {
	relation := func(t pg_query.ObjectType) bool {
		switch t {
		case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW,
			pg_query.ObjectType_OBJECT_FOREIGN_TABLE, pg_query.ObjectType_OBJECT_SEQUENCE, pg_query.ObjectType_OBJECT_INDEX:
			return true
		}
		return false
	}
	var out []TableMove
	switch s := n.GetNode().(type) {
	case *pg_query.Node_DropStmt:
		d := s.DropStmt
		switch {
		case relation(d.RemoveType):
			for _, o := range d.Objects {
				var parts []string
				for _, it := range o.GetList().GetItems() {
					parts = append(parts, it.GetString_().GetSval())
				}
				switch len(parts) {
				case 1:
					out = append(out, TableMove{From: Table{Name: parts[0]}})
				case 2, 3: // [catalog.]schema.name
					out = append(out, TableMove{From: Table{Schema: parts[len(parts)-2], Name: parts[len(parts)-1]}})
				}
			}
		case d.RemoveType == pg_query.ObjectType_OBJECT_SCHEMA:
			// Every relation of the schema goes; a name created
			// unqualified may have gone to it (TableIn: "" matches).
			for _, o := range d.Objects {
				out = append(out, TableMove{From: Table{Schema: o.GetString_().GetSval(), Name: "*"}})
			}
		}
	case *pg_query.Node_RenameStmt:
		r := s.RenameStmt
		if r.Relation != nil && r.Newname != "" && relation(r.RenameType) {
			from := TableOf(r.Relation)
			out = append(out, TableMove{From: from, To: Table{Schema: from.Schema, Name: r.Newname}})
		}
	case *pg_query.Node_AlterTableStmt:
		// ALTER TABLE t INHERIT p, ALTER TABLE p ATTACH PARTITION t: p
		// now holds t's rows, so a p created in the transaction is new
		// no more (an UPDATE or DELETE of p reaches t's).
		for _, c := range s.AlterTableStmt.Cmds {
			cmd := c.GetAlterTableCmd()
			switch {
			case cmd == nil:
			case cmd.Subtype == pg_query.AlterTableType_AT_AddInherit && cmd.GetDef().GetRangeVar() != nil:
				out = append(out, TableMove{From: TableOf(cmd.GetDef().GetRangeVar())})
			case cmd.Subtype == pg_query.AlterTableType_AT_AttachPartition && s.AlterTableStmt.Relation != nil:
				out = append(out, TableMove{From: TableOf(s.AlterTableStmt.Relation)})
			}
		}
	case *pg_query.Node_AlterObjectSchemaStmt:
		a := s.AlterObjectSchemaStmt
		if a.Relation != nil && a.Newschema != "" && relation(a.ObjectType) {
			from := TableOf(a.Relation)
			out = append(out, TableMove{From: from, To: Table{Schema: a.Newschema, Name: from.Name}})
		}
	}
	return out
}
