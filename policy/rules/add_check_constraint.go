package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "add-check-constraint",
		Summary:       "ADD CHECK / ADD COLUMN ... CHECK without NOT VALID scans the table under ACCESS EXCLUSIVE",
		Default:       policy.LevelReject,
		SizeDependent: true,
		Check:         checkAddCheckConstraint,
		Verify: &policy.Verification{
			Statement: "ALTER TABLE ledger ADD CONSTRAINT ledger_amount_nonnegative CHECK (amount >= 0)",
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkScan,
		},
	})
}

func checkAddCheckConstraint(c *policy.Check, n *pg_query.Node) {
	t, cmds := policy.AlterTableCmds(n)
	for _, cmd := range cmds {
		switch cmd.Subtype {
		case pg_query.AlterTableType_AT_AddConstraint:
			k := cmd.GetDef().GetConstraint()
			if k == nil || k.Contype != pg_query.ConstrType_CONSTR_CHECK || k.SkipValidation {
				continue
			}
			name := policy.ConstraintNameOf(t, k, "")
			c.Report(policy.Report{
				Table:   t,
				Lock:    policy.LockAccessExclusive,
				Message: fmt.Sprintf("Adding CHECK constraint %s to %s checks every existing row while holding an ACCESS EXCLUSIVE lock, blocking all reads and writes until the whole table has been scanned.", policy.QuoteIdent(name), t),
				Hint:    policy.NotValidRecipe(t, k, name),
			})
		case pg_query.AlterTableType_AT_AddColumn:
			col := cmd.GetDef().GetColumnDef()
			if col == nil {
				continue
			}
			for _, k := range policy.ColumnConstraints(col, pg_query.ConstrType_CONSTR_CHECK) {
				name := policy.ConstraintNameOf(t, k, col.Colname)
				bare := policy.BareColumn(col, pg_query.ConstrType_CONSTR_CHECK)
				var b strings.Builder
				b.WriteString("-- add the column without the CHECK constraint:\n")
				b.WriteString(policy.AddColumnSQL(t, bare) + ";\n")
				b.WriteString(policy.NotValidRecipe(t, k, name))
				c.Report(policy.Report{
					Table:   t,
					Lock:    policy.LockAccessExclusive,
					Message: fmt.Sprintf("Adding column %s with a CHECK constraint makes PostgreSQL scan all of %s while holding an ACCESS EXCLUSIVE lock, blocking all reads and writes until every row has been checked.", policy.QuoteIdent(col.Colname), t),
					Hint:    b.String(),
				})
				break
			}
		}
	}
}
