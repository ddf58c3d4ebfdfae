package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "add-unique-constraint",
		Summary:       "ADD UNIQUE / ADD COLUMN ... UNIQUE builds the index under ACCESS EXCLUSIVE",
		Default:       policy.LevelReject,
		SizeDependent: true,
		Check: func(c *policy.Check, n *pg_query.Node) {
			checkAddIndexConstraint(c, n, pg_query.ConstrType_CONSTR_UNIQUE)
		},
		Verify: &policy.Verification{
			Statement: "ALTER TABLE ledger ADD CONSTRAINT ledger_account_id_id_key UNIQUE (account_id, id)",
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkScan,
		},
	})
}

// checkAddIndexConstraint reports UNIQUE or PRIMARY KEY constraints added
// to an existing table without USING INDEX: PostgreSQL builds their index
// while holding ACCESS EXCLUSIVE.
func checkAddIndexConstraint(c *policy.Check, n *pg_query.Node, kind pg_query.ConstrType) {
	t, cmds := policy.AlterTableCmds(n)
	what := "UNIQUE constraint"
	if kind == pg_query.ConstrType_CONSTR_PRIMARY {
		what = "PRIMARY KEY"
	}
	for _, cmd := range cmds {
		var k *pg_query.Constraint
		var col *pg_query.ColumnDef
		switch cmd.Subtype {
		case pg_query.AlterTableType_AT_AddConstraint:
			k = cmd.GetDef().GetConstraint()
		case pg_query.AlterTableType_AT_AddColumn:
			col = cmd.GetDef().GetColumnDef()
			if col != nil {
				if ks := policy.ColumnConstraints(col, kind); len(ks) > 0 {
					k = ks[0]
				}
			}
		}
		if k == nil || k.Contype != kind || k.Indexname != "" {
			continue
		}
		cols := policy.StringList(k.Keys)
		colName := ""
		if col != nil {
			colName = col.Colname
			cols = []string{col.Colname}
		}
		name := policy.ConstraintNameOf(t, k, colName)
		msg := fmt.Sprintf("Adding a %s on %s (%s) builds its unique index while holding an ACCESS EXCLUSIVE lock, blocking all reads and writes until the whole table has been read and indexed.", what, t, policy.IdentList(cols))
		if kind == pg_query.ConstrType_CONSTR_PRIMARY {
			msg = strings.TrimSuffix(msg, ".") + " (and checks the key columns for NULLs under the same lock)."
		}
		var detail string
		hint := uniqueIndexRecipe(t, k, col, cols, name, c.Version, c.Session.Tool)
		// Asked only now: every statement that is not ALTER TABLE ... ADD
		// UNIQUE/PRIMARY KEY reaches this rule too (the engine's memo
		// answers a second constraint on the same table).
		if partitioned, _ := c.Partitioned(t); partitioned {
			detail = fmt.Sprintf("%s is partitioned: CREATE INDEX CONCURRENTLY and USING INDEX do not work on it.", t)
			hint = fmt.Sprintf("-- build a matching unique index on each partition first, one at a time:\n"+
				c.OutsideTransaction()+"\n"+
				"CREATE UNIQUE INDEX CONCURRENTLY <partition>_%s ON <partition> (%s);\n"+
				"-- then add the constraint on %s: PostgreSQL attaches the partitions' indexes instead of building new ones (a brief lock):\n%s",
				strings.Join(cols, "_"), policy.IdentList(cols), t, strings.TrimSpace(c.SQL()))
		}
		c.Report(policy.Report{
			Table:   t,
			Lock:    policy.LockAccessExclusive,
			Message: msg,
			Detail:  detail,
			Hint:    hint,
		})
	}
}

// uniqueIndexRecipe: CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT
// ... USING INDEX (brief lock, no build). For a PRIMARY KEY the columns are
// made NOT NULL first without a scan under ACCESS EXCLUSIVE; for a new
// column, the column is added first without the constraint.
func uniqueIndexRecipe(t policy.Table, k *pg_query.Constraint, col *pg_query.ColumnDef, cols []string, name string, version int, tool policy.Tool) string {
	pk := k.Contype == pg_query.ConstrType_CONSTR_PRIMARY
	var b strings.Builder
	if col != nil {
		bare := policy.BareColumn(col, pg_query.ConstrType_CONSTR_UNIQUE, pg_query.ConstrType_CONSTR_PRIMARY, pg_query.ConstrType_CONSTR_NOTNULL)
		b.WriteString("-- add the column without the constraint:\n")
		b.WriteString(policy.AddColumnSQL(t, bare) + ";\n")
		if pk {
			fmt.Fprintf(&b, "-- fill %s for every existing row (in batches, outside the migration) before the next steps.\n", policy.QuoteIdent(col.Colname))
		}
	}
	if pk {
		b.WriteString("-- a PRIMARY KEY needs its columns NOT NULL; make them so without a scan under ACCESS EXCLUSIVE (skip the columns that already are):\n")
		for _, c := range cols {
			b.WriteString(notNullRecipe(t, c, version) + "\n")
		}
	}
	idx := policy.InSchema(t, name)
	b.WriteString("-- build the unique index without blocking writes:\n")
	b.WriteString(policy.OutsideTransactionHintFor(tool) + "\n")
	fmt.Fprintf(&b, "CREATE UNIQUE INDEX CONCURRENTLY %s ON %s (%s)", policy.QuoteIdent(name), t, policy.IdentList(cols))
	if inc := policy.StringList(k.Including); len(inc) > 0 {
		fmt.Fprintf(&b, " INCLUDE (%s)", policy.IdentList(inc))
	}
	if k.NullsNotDistinct {
		b.WriteString(" NULLS NOT DISTINCT")
	}
	b.WriteString(";\n")
	b.WriteString("-- then turn it into the constraint (a brief ACCESS EXCLUSIVE lock, no index build):\n")
	kw := "UNIQUE"
	if pk {
		kw = "PRIMARY KEY"
	}
	fmt.Fprintf(&b, "ALTER TABLE %s ADD CONSTRAINT %s %s USING INDEX %s", t, policy.QuoteIdent(name), kw, policy.QuoteIdent(idx.Name))
	if k.Deferrable {
		b.WriteString(" DEFERRABLE")
		if k.Initdeferred {
			b.WriteString(" INITIALLY DEFERRED")
		}
	}
	b.WriteString(";")
	if pk && version < 12 {
		b.WriteString("\n-- before PostgreSQL 12, ADD PRIMARY KEY ... USING INDEX scans nullable columns under ACCESS EXCLUSIVE: run SET NOT NULL in a quiet moment first.")
	}
	return b.String()
}
