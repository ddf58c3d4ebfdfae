package policy

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	Register(Rule{
		ID:            "add-foreign-key",
		Summary:       "ADD FOREIGN KEY without NOT VALID checks every row while blocking writes to both tables",
		Default:       LevelReject,
		SizeDependent: true,
		Check:         checkAddForeignKey,
		Verify: &Verification{
			Statement: "ALTER TABLE ledger ADD CONSTRAINT ledger_account_id_fkey FOREIGN KEY (account_id) REFERENCES accounts (id)",
			Lock:      LockShareRowExclusive,
			Work:      WorkScan,
		},
	})
}

func checkAddForeignKey(c *Check, n *pg_query.Node) {
	t, cmds := AlterTableCmds(n)
	for _, cmd := range cmds {
		switch cmd.Subtype {
		case pg_query.AlterTableType_AT_AddConstraint:
			k := cmd.GetDef().GetConstraint()
			if k == nil || k.Contype != pg_query.ConstrType_CONSTR_FOREIGN || k.SkipValidation {
				continue
			}
			name := constraintName(t, k, "")
			ref := TableOf(k.Pktable)
			c.Report(Report{
				Table:   t,
				Lock:    LockShareRowExclusive,
				Message: fmt.Sprintf("Adding foreign key %s on %s checks every existing row against %s while holding SHARE ROW EXCLUSIVE locks on both tables, blocking all writes to them until the whole of %s has been scanned.", QuoteIdent(name), t, ref, t),
				Hint:    notValidRecipe(t, k, name),
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
			for _, k := range columnConstraints(col, pg_query.ConstrType_CONSTR_FOREIGN) {
				name := constraintName(t, k, col.Colname)
				fk := cloneNode(&pg_query.Node{Node: &pg_query.Node_Constraint{Constraint: k}}).GetConstraint()
				fk.FkAttrs = []*pg_query.Node{pg_query.MakeStrNode(col.Colname)}
				bare := bareColumn(col, pg_query.ConstrType_CONSTR_FOREIGN)
				var b strings.Builder
				b.WriteString("-- add the column without the foreign key:\n")
				b.WriteString(addColumnSQL(t, bare) + ";\n")
				b.WriteString(notValidRecipe(t, fk, name))
				c.Report(Report{
					Table:   t,
					Lock:    LockAccessExclusive,
					Message: fmt.Sprintf("Adding column %s with DEFAULT %s and a foreign key to %s makes PostgreSQL check every row of %s while holding an ACCESS EXCLUSIVE lock on it, blocking all reads and writes until the scan ends.", QuoteIdent(col.Colname), DeparseExpr(def), TableOf(k.Pktable), t),
					Hint:    b.String(),
				})
				break
			}
		}
	}
}
