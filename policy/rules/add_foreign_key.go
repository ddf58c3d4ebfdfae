package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "add-foreign-key",
		Summary:       "ADD FOREIGN KEY without NOT VALID checks every row while blocking writes to both tables",
		Default:       policy.LevelReject,
		SizeDependent: true,
		Check:         checkAddForeignKey,
		Verify: &policy.Verification{
			Statement: "ALTER TABLE ledger ADD CONSTRAINT ledger_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts (id)",
			Lock:      policy.LockShareRowExclusive,
			Work:      policy.WorkScan,
		},
	})
}

func checkAddForeignKey(c *policy.Check, n *pg_query.Node) {
	t, cmds := policy.AlterTableCmds(n)
	for _, cmd := range cmds {
		switch cmd.Subtype {
		case pg_query.AlterTableType_AT_AddConstraint:
			k := cmd.GetDef().GetConstraint()
			if k == nil || k.Contype != pg_query.ConstrType_CONSTR_FOREIGN || k.SkipValidation {
				continue
			}
			name := policy.ConstraintNameOf(t, k, "")
			ref := policy.TableOf(k.Pktable)
			c.Report(policy.Report{
				Table:   t,
				Lock:    policy.LockShareRowExclusive,
				Message: fmt.Sprintf("Adding foreign key %s on %s checks every existing row against %s while holding SHARE ROW EXCLUSIVE locks on both tables, blocking all writes to them until the whole of %s has been scanned.", policy.QuoteIdent(name), t, ref, t),
				Hint:    policy.NotValidRecipe(t, k, name),
			})
		case pg_query.AlterTableType_AT_AddColumn:
			// A new column is NULL in every row, so PostgreSQL skips the
			// check, unless the column gets a non-null default.
			col := cmd.GetDef().GetColumnDef()
			if col == nil {
				continue
			}
			def := columnDefault(col)
			if def == nil || isNullConst(def) {
				continue
			}
			for _, k := range policy.ColumnConstraints(col, pg_query.ConstrType_CONSTR_FOREIGN) {
				name := policy.ConstraintNameOf(t, k, col.Colname)
				fk := policy.CloneNode(&pg_query.Node{Node: &pg_query.Node_Constraint{Constraint: k}}).GetConstraint()
				fk.FkAttrs = []*pg_query.Node{pg_query.MakeStrNode(col.Colname)}
				bare := policy.BareColumn(col, pg_query.ConstrType_CONSTR_FOREIGN)
				var b strings.Builder
				b.WriteString("-- add the column without the foreign key:\n")
				b.WriteString(policy.AddColumnSQL(t, bare) + ";\n")
				b.WriteString(policy.NotValidRecipe(t, fk, name))
				c.Report(policy.Report{
					Table:   t,
					Lock:    policy.LockAccessExclusive,
					Message: fmt.Sprintf("Adding column %s with DEFAULT %s and a foreign key to %s makes PostgreSQL check every row of %s while holding an ACCESS EXCLUSIVE lock on it, blocking all reads and writes until the scan ends.", policy.QuoteIdent(col.Colname), policy.DeparseExpr(def), policy.TableOf(k.Pktable), t),
					Hint:    b.String(),
				})
				break
			}
		}
	}
}
