package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:       "require-named-constraint",
		Advisory: true,
		Summary:  "CHECK, UNIQUE, FOREIGN KEY and EXCLUDE constraints without a name get one chosen by PostgreSQL",
		Default:  policy.LevelOff,
		Check:    checkRequireNamedConstraint,
		// No Verify: advisory, about names, not a lock.
	})
}

var constraintSuffix = map[pg_query.ConstrType]string{
	pg_query.ConstrType_CONSTR_CHECK:     "check",
	pg_query.ConstrType_CONSTR_UNIQUE:    "key",
	pg_query.ConstrType_CONSTR_FOREIGN:   "fkey",
	pg_query.ConstrType_CONSTR_EXCLUSION: "excl",
}

func checkRequireNamedConstraint(c *policy.Check, n *pg_query.Node) {
	var t policy.Table
	switch s := n.GetNode().(type) {
	case *pg_query.Node_CreateStmt:
		t = policy.TableOf(s.CreateStmt.Relation)
	case *pg_query.Node_AlterTableStmt:
		t = policy.TableOf(s.AlterTableStmt.Relation)
	default:
		return
	}
	cp := policy.CloneNode(n)
	var kinds []string
	// Column constraints name themselves after their column; table
	// constraints after their first key column or checked column.
	visit := func(k *pg_query.Constraint, column string) {
		suffix, ok := constraintSuffix[k.Contype]
		if !ok || k.Conname != "" {
			return
		}
		if column == "" {
			keys := k.Keys
			if k.Contype == pg_query.ConstrType_CONSTR_FOREIGN {
				keys = k.FkAttrs
			}
			var cols []string
			for _, kn := range keys {
				cols = append(cols, kn.GetString_().GetSval())
			}
			if k.Contype == pg_query.ConstrType_CONSTR_CHECK {
				policy.Walk(k.RawExpr, func(x *pg_query.Node) bool {
					if col := dmlColumnName(x); col != "" && len(cols) == 0 {
						cols = append(cols, col)
					}
					return len(cols) == 0
				})
			}
			column = strings.Join(cols, "_")
		}
		k.Conname = policy.ConstraintName(t, column, suffix)
		kinds = append(kinds, map[string]string{"check": "CHECK", "key": "UNIQUE", "fkey": "FOREIGN KEY", "excl": "EXCLUDE"}[suffix])
	}
	forColumnDefs(cp, func(cd *pg_query.ColumnDef, name string) {
		for _, cn := range cd.Constraints {
			if k := cn.GetConstraint(); k != nil {
				visit(k, name)
			}
		}
	})
	switch s := cp.GetNode().(type) {
	case *pg_query.Node_CreateStmt:
		for _, cn := range append(append([]*pg_query.Node(nil), s.CreateStmt.TableElts...), s.CreateStmt.Constraints...) {
			if k := cn.GetConstraint(); k != nil {
				visit(k, "")
			}
		}
	case *pg_query.Node_AlterTableStmt:
		for _, cn := range s.AlterTableStmt.Cmds {
			if cmd := cn.GetAlterTableCmd(); cmd != nil && cmd.Subtype == pg_query.AlterTableType_AT_AddConstraint {
				if k := cmd.GetDef().GetConstraint(); k != nil {
					visit(k, "")
				}
			}
		}
	}
	if len(kinds) == 0 {
		return
	}
	hint := policy.Deparse(cp)
	if hint != "" {
		hint += ";"
	}
	c.Report(policy.Report{
		Table:   t,
		Message: fmt.Sprintf("Unnamed %s %s on %s: PostgreSQL picks the names (adding a number when it is taken), so later migrations cannot be sure which name to drop or validate.", strings.Join(kinds, ", "), map[bool]string{true: "constraint", false: "constraints"}[len(kinds) == 1], t),
		Hint:    advisoryHint("-- the same with names:", hint),
	})
}
