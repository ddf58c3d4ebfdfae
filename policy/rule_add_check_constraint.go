package policy

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	Register(Rule{
		ID:            "add-check-constraint",
		Summary:       "ADD CHECK / ADD COLUMN ... CHECK without NOT VALID scans the table under ACCESS EXCLUSIVE",
		Default:       LevelReject,
		SizeDependent: true,
		Check:         checkAddCheckConstraint,
		Verify: &Verification{
			Statement: "ALTER TABLE ledger ADD CONSTRAINT ledger_amount_nonnegative CHECK (amount >= 0)",
			Lock:      LockAccessExclusive,
			Work:      WorkScan,
		},
	})
}

func checkAddCheckConstraint(c *Check, n *pg_query.Node) {
	t, cmds := AlterTableCmds(n)
	for _, cmd := range cmds {
		switch cmd.Subtype {
		case pg_query.AlterTableType_AT_AddConstraint:
			k := cmd.GetDef().GetConstraint()
			if k == nil || k.Contype != pg_query.ConstrType_CONSTR_CHECK || k.SkipValidation {
				continue
			}
			name := constraintName(t, k, "")
			c.Report(Report{
				Table:   t,
				Lock:    LockAccessExclusive,
				Message: fmt.Sprintf("Adding CHECK constraint %s to %s checks every existing row while holding an ACCESS EXCLUSIVE lock, blocking all reads and writes until the whole table has been scanned.", QuoteIdent(name), t),
				Hint:    notValidRecipe(t, k, name),
			})
		case pg_query.AlterTableType_AT_AddColumn:
			col := cmd.GetDef().GetColumnDef()
			if col == nil {
				continue
			}
			for _, k := range columnConstraints(col, pg_query.ConstrType_CONSTR_CHECK) {
				name := constraintName(t, k, col.Colname)
				bare := bareColumn(col, pg_query.ConstrType_CONSTR_CHECK)
				var b strings.Builder
				b.WriteString("-- add the column without the CHECK constraint:\n")
				b.WriteString(addColumnSQL(t, bare) + ";\n")
				b.WriteString(notValidRecipe(t, k, name))
				c.Report(Report{
					Table:   t,
					Lock:    LockAccessExclusive,
					Message: fmt.Sprintf("Adding column %s with a CHECK constraint makes PostgreSQL scan all of %s while holding an ACCESS EXCLUSIVE lock, blocking all reads and writes until every row has been checked.", QuoteIdent(col.Colname), t),
					Hint:    b.String(),
				})
				break
			}
		}
	}
}
