package policy

import (
	"context"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// RenameObserver is a catalog that follows the relations renamed through
// pgguard: one judging with another database's sizes, which still has
// them by the name they had before (the release's migration has not run
// there yet). The engine tells it of a statement that renames a table or
// materialized view, or moves it to another schema, as it judges it,
// before it runs: from as the statement names it, to its name after (the
// schema empty when from names none and the statement keeps it).
type RenameObserver interface {
	WillRename(ctx context.Context, from string, to Table)
}

// RenamedRelation reads ALTER TABLE (or MATERIALIZED VIEW) ... RENAME TO
// and ... SET SCHEMA: the relation as named, and its name after.
func RenamedRelation(n *pg_query.Node) (from, to Table, ok bool) {
	switch s := n.GetNode().(type) {
	case *pg_query.Node_RenameStmt:
		r := s.RenameStmt
		if r.Relation == nil || r.Newname == "" || r.RenameType != pg_query.ObjectType_OBJECT_TABLE && r.RenameType != pg_query.ObjectType_OBJECT_MATVIEW {
			return Table{}, Table{}, false
		}
		from = TableOf(r.Relation)
		return from, Table{Schema: from.Schema, Name: r.Newname}, true
	case *pg_query.Node_AlterObjectSchemaStmt:
		a := s.AlterObjectSchemaStmt
		if a.Relation == nil || a.Newschema == "" || a.ObjectType != pg_query.ObjectType_OBJECT_TABLE && a.ObjectType != pg_query.ObjectType_OBJECT_MATVIEW {
			return Table{}, Table{}, false
		}
		from = TableOf(a.Relation)
		return from, Table{Schema: a.Newschema, Name: from.Name}, true
	}
	return Table{}, Table{}, false
}
