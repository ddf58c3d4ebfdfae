package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Helpers of the advisory rules about column types (prefer-*).

// typeCols lists the columns a CREATE TABLE, ALTER TABLE ... ADD COLUMN or
// ALTER COLUMN ... TYPE declares whose type matches, as "name" (quoted).
func typeCols(n *pg_query.Node, match func(tn *pg_query.TypeName, cd *pg_query.ColumnDef) bool) (policy.Table, []string) {
	var t policy.Table
	switch s := n.GetNode().(type) {
	case *pg_query.Node_CreateStmt:
		t = policy.TableOf(s.CreateStmt.Relation)
	case *pg_query.Node_AlterTableStmt:
		if s.AlterTableStmt.Objtype != pg_query.ObjectType_OBJECT_TABLE {
			return t, nil
		}
		t = policy.TableOf(s.AlterTableStmt.Relation)
	default:
		return t, nil
	}
	var cols []string
	forColumnDefs(n, func(cd *pg_query.ColumnDef, name string) {
		if cd.TypeName != nil && match(cd.TypeName, cd) {
			cols = append(cols, policy.QuoteIdent(name))
		}
	})
	return t, cols
}

// forColumnDefs calls fn for each column definition of a CREATE TABLE or
// ALTER TABLE (ADD COLUMN, ALTER COLUMN TYPE, whose ColumnDef has no name:
// the command's Name is used).
func forColumnDefs(n *pg_query.Node, fn func(cd *pg_query.ColumnDef, name string)) {
	switch s := n.GetNode().(type) {
	case *pg_query.Node_CreateStmt:
		for _, e := range s.CreateStmt.TableElts {
			if cd := e.GetColumnDef(); cd != nil {
				fn(cd, cd.Colname)
			}
		}
	case *pg_query.Node_AlterTableStmt:
		for _, c := range s.AlterTableStmt.Cmds {
			cmd := c.GetAlterTableCmd()
			if cmd == nil {
				continue
			}
			switch cmd.Subtype {
			case pg_query.AlterTableType_AT_AddColumn:
				if cd := cmd.GetDef().GetColumnDef(); cd != nil {
					fn(cd, cd.Colname)
				}
			case pg_query.AlterTableType_AT_AlterColumnType:
				if cd := cmd.GetDef().GetColumnDef(); cd != nil {
					fn(cd, cmd.Name)
				}
			}
		}
	}
}

// typeNameIs reports whether a type name's last part is one of names
// (pg_catalog.int4 and int4 alike).
func typeNameIs(tn *pg_query.TypeName, names ...string) bool {
	if tn == nil || len(tn.Names) == 0 || len(tn.ArrayBounds) > 0 {
		return false
	}
	last := strings.ToLower(tn.Names[len(tn.Names)-1].GetString_().GetSval())
	if len(tn.Names) > 2 || (len(tn.Names) == 2 && tn.Names[0].GetString_().GetSval() != "pg_catalog") {
		return false
	}
	for _, n := range names {
		if last == n {
			return true
		}
	}
	return false
}

// retyped deparses a copy of the statement with each matching column type
// replaced, for a hint; "" when that fails.
func retyped(n *pg_query.Node, match func(tn *pg_query.TypeName, cd *pg_query.ColumnDef) bool, to func(tn *pg_query.TypeName) *pg_query.TypeName) string {
	cp := policy.CloneNode(n)
	forColumnDefs(cp, func(cd *pg_query.ColumnDef, _ string) {
		if cd.TypeName != nil && match(cd.TypeName, cd) {
			cd.TypeName = to(cd.TypeName)
		}
	})
	out := policy.Deparse(cp)
	if out == "" {
		return ""
	}
	return out + ";"
}

// simpleType builds a TypeName for a built-in type.
func simpleType(names ...string) *pg_query.TypeName {
	tn := &pg_query.TypeName{Typemod: -1}
	for _, n := range names {
		tn.Names = append(tn.Names, pg_query.MakeStrNode(n))
	}
	return tn
}

// columnList joins quoted column names for a message.
func columnList(cols []string) string {
	if len(cols) == 1 {
		return "column " + cols[0]
	}
	return "columns " + strings.Join(cols, ", ")
}

// uses agrees the verb with columnList.
func uses(cols []string) string {
	if len(cols) == 1 {
		return "uses"
	}
	return "use"
}

// advisoryHint formats the retyped statement, or a fallback.
func advisoryHint(why, sql string) string {
	if sql == "" {
		return why
	}
	return fmt.Sprintf("%s\n%s", why, sql)
}
