package policy

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// Helpers shared by the ALTER TABLE constraint and column rules
// (add-check-constraint, add-foreign-key, add-unique-constraint,
// add-primary-key, validate-in-same-transaction, alter-column-type, ...).

// stringList returns the values of a list of String nodes (column lists).
func StringList(nodes []*pg_query.Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if s := n.GetString_(); s != nil {
			out = append(out, s.Sval)
		}
	}
	return out
}

// identList quotes and joins column names: a, "accountId".
func IdentList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = QuoteIdent(c)
	}
	return strings.Join(q, ", ")
}

// quoteLiteral returns s as an SQL string literal.
func QuoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// relationName truncates a generated name to PostgreSQL's 63 bytes.
func RelationName(name string) string {
	if len(name) > 63 {
		return name[:63]
	}
	return name
}

// inSchema names an object in t's schema.
func InSchema(t Table, name string) Table {
	return Table{Schema: t.Schema, Name: name}
}

// exprColumns returns the column names an expression references, in order
// of first appearance.
func exprColumns(expr *pg_query.Node) []string {
	var cols []string
	seen := map[string]bool{}
	Walk(expr, func(n *pg_query.Node) bool {
		if cr := n.GetColumnRef(); cr != nil && len(cr.Fields) > 0 {
			if s := cr.Fields[len(cr.Fields)-1].GetString_(); s != nil && !seen[s.Sval] {
				seen[s.Sval] = true
				cols = append(cols, s.Sval)
			}
		}
		return true
	})
	return cols
}

// constraintDefaultName is the name PostgreSQL gives an unnamed constraint
// (close enough to find it again): <table>_<columns>_<suffix>.
func constraintDefaultName(t Table, cols []string, suffix string) string {
	if len(cols) == 0 {
		return RelationName(t.Name + "_" + suffix)
	}
	return ConstraintName(t, strings.Join(cols, "_"), suffix)
}

// constraintName returns a constraint's name, or the one PostgreSQL would
// choose when it has none. column is the column of a column constraint.
func ConstraintNameOf(t Table, k *pg_query.Constraint, column string) string {
	if k.Conname != "" {
		return k.Conname
	}
	switch k.Contype {
	case pg_query.ConstrType_CONSTR_CHECK:
		cols := exprColumns(k.RawExpr)
		if column != "" {
			cols = []string{column}
		}
		if len(cols) > 1 {
			cols = cols[:1]
		}
		return constraintDefaultName(t, cols, "check")
	case pg_query.ConstrType_CONSTR_FOREIGN:
		cols := StringList(k.FkAttrs)
		if column != "" {
			cols = []string{column}
		}
		return constraintDefaultName(t, cols, "fkey")
	case pg_query.ConstrType_CONSTR_PRIMARY:
		return RelationName(t.Name + "_pkey")
	case pg_query.ConstrType_CONSTR_UNIQUE:
		cols := StringList(k.Keys)
		if column != "" {
			cols = []string{column}
		}
		return constraintDefaultName(t, cols, "key")
	case pg_query.ConstrType_CONSTR_EXCLUSION:
		return constraintDefaultName(t, nil, "excl")
	}
	return constraintDefaultName(t, nil, "constraint")
}

// columnConstraints returns a column definition's constraints of the given
// kinds.
func ColumnConstraints(col *pg_query.ColumnDef, kinds ...pg_query.ConstrType) []*pg_query.Constraint {
	var out []*pg_query.Constraint
	for _, cn := range col.Constraints {
		k := cn.GetConstraint()
		if k == nil {
			continue
		}
		for _, kind := range kinds {
			if k.Contype == kind {
				out = append(out, k)
			}
		}
	}
	return out
}

// bareColumn returns a copy of col without the constraints of the given
// kinds (and without NOT NULL when NOT NULL is one of them).
func BareColumn(col *pg_query.ColumnDef, drop ...pg_query.ConstrType) *pg_query.ColumnDef {
	bare := proto.Clone(col).(*pg_query.ColumnDef)
	bare.Constraints = nil
	for _, cn := range col.Constraints {
		k := cn.GetConstraint()
		keep := true
		for _, kind := range drop {
			if k != nil && k.Contype == kind {
				keep = false
			}
		}
		if keep {
			bare.Constraints = append(bare.Constraints, cn)
		}
	}
	for _, kind := range drop {
		switch kind {
		case pg_query.ConstrType_CONSTR_NOTNULL:
			bare.IsNotNull = false
		case pg_query.ConstrType_CONSTR_DEFAULT:
			bare.RawDefault = nil
		}
	}
	return bare
}

// addColumnSQL is ALTER TABLE t ADD COLUMN col.
func AddColumnSQL(t Table, col *pg_query.ColumnDef) string {
	return Deparse(AlterTable(t, &pg_query.AlterTableCmd{Subtype: pg_query.AlterTableType_AT_AddColumn,
		Def: &pg_query.Node{Node: &pg_query.Node_ColumnDef{ColumnDef: col}}}))
}

// addConstraintSQL is ALTER TABLE t ADD CONSTRAINT name <k> [NOT VALID].
func addConstraintSQL(t Table, k *pg_query.Constraint, name string, notValid bool) string {
	k = proto.Clone(k).(*pg_query.Constraint)
	k.Conname = name
	if notValid {
		k.SkipValidation, k.InitiallyValid = true, false
	}
	return Deparse(AlterTable(t, &pg_query.AlterTableCmd{Subtype: pg_query.AlterTableType_AT_AddConstraint,
		Def: &pg_query.Node{Node: &pg_query.Node_Constraint{Constraint: k}}}))
}

// notValidRecipe adds a CHECK or FOREIGN KEY constraint NOT VALID and
// validates it in a separate transaction.
func NotValidRecipe(t Table, k *pg_query.Constraint, name string) string {
	var b strings.Builder
	b.WriteString("-- add the constraint without checking existing rows (a brief lock; new and updated rows are checked from now on):\n")
	b.WriteString(InOwnTransaction(addConstraintSQL(t, k, name, true)+";") + "\n")
	b.WriteString(ValidateSeparately)
	b.WriteString(InOwnTransaction(fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s;", t, QuoteIdent(name))))
	return b.String()
}

// newRowExpr returns expr with every unqualified column reference turned
// into NEW.column, for a row trigger.
func NewRowExpr(expr *pg_query.Node) *pg_query.Node {
	e := CloneNode(expr)
	Walk(e, func(n *pg_query.Node) bool {
		if cr := n.GetColumnRef(); cr != nil && len(cr.Fields) == 1 && cr.Fields[0].GetString_() != nil {
			cr.Fields = append([]*pg_query.Node{pg_query.MakeStrNode("new")}, cr.Fields...)
		}
		return true
	})
	return e
}

// fillTriggerSQL creates a BEFORE INSERT OR UPDATE row trigger on t that
// sets column to valueSQL (an expression over NEW).
func FillTriggerSQL(t Table, column, valueSQL, suffix string, version int) string {
	fn := InSchema(t, ConstraintName(t, column, suffix))
	trig := QuoteIdent(ConstraintName(t, column, suffix))
	exec := "FUNCTION"
	if version < 11 {
		exec = "PROCEDURE"
	}
	return phBody + "\n" + fmt.Sprintf("CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  NEW.%s := %s;\n  RETURN NEW;\nEND\n$$;\n", fn, QuoteIdent(column), valueSQL) +
		fmt.Sprintf("CREATE TRIGGER %s BEFORE INSERT OR UPDATE ON %s FOR EACH ROW EXECUTE %s %s();", trig, t, exec, fn)
}

// batchUpdateWhereSQL is one batch of a backfill of column with value over
// the rows that match where: run it again until it updates 0 rows.
func BatchUpdateWhereSQL(t Table, column, value, where string) string {
	return "UPDATE " + t.String() + " SET " + QuoteIdent(column) + " = " + value +
		" WHERE ctid = ANY (ARRAY(SELECT ctid FROM " + t.String() + " WHERE " + where + " LIMIT 10000));"
}
