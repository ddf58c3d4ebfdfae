package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:      "add-column-not-null-without-default",
		Summary: "ADD COLUMN ... NOT NULL without a default fails on any table that has rows",
		Default: policy.LevelReject,
		// Not SizeDependent: the statement fails on a table with a single
		// row, so only tables created in the open transaction are exempt.
		Check: checkAddColumnNotNullWithoutDefault,
		Verify: &policy.Verification{
			Statement: "ALTER TABLE ledger ADD COLUMN settled_by text NOT NULL",
			Error:     "23502", // not_null_violation: column "settled_by" ... contains null values
			// The recipe needs the value existing rows should take, which
			// only the application knows: its hint holds a placeholder.
			NoRecipe: true,
		},
	})
}

func checkAddColumnNotNullWithoutDefault(c *policy.Check, n *pg_query.Node) {
	t, cmds := policy.AlterTableCmds(n)
	if c.Created(t) {
		return // empty: nothing can violate NOT NULL
	}
	for _, cmd := range cmds {
		col := cmd.GetDef().GetColumnDef()
		if cmd.Subtype != pg_query.AlterTableType_AT_AddColumn || col == nil {
			continue
		}
		notNull := col.IsNotNull || len(policy.ColumnConstraints(col, pg_query.ConstrType_CONSTR_NOTNULL, pg_query.ConstrType_CONSTR_PRIMARY)) > 0
		if !notNull {
			continue
		}
		if def := columnDefault(col); def != nil && !isNullConst(def) {
			continue
		}
		if _, base := serialType(col); base != "" {
			continue // filled from its sequence (add-column-serial-identity-generated)
		}
		if len(policy.ColumnConstraints(col, pg_query.ConstrType_CONSTR_IDENTITY, pg_query.ConstrType_CONSTR_GENERATED)) > 0 {
			continue
		}
		c.Report(policy.Report{
			Table:   t,
			Lock:    policy.LockAccessExclusive,
			Message: fmt.Sprintf("Adding %s to %s as NOT NULL without a default fails as soon as %s has a row, after waiting for an ACCESS EXCLUSIVE lock and scanning the table: existing rows would hold NULL.", policy.QuoteIdent(col.Colname), t, t),
			Hint:    notNullColumnRecipe(t, col, c.Version),
		})
	}
}

// notNullColumnRecipe: give the column a constant default, or add it
// nullable, backfill and add NOT NULL without a long lock.
func notNullColumnRecipe(t policy.Table, col *pg_query.ColumnDef, version int) string {
	bare := policy.BareColumn(col, pg_query.ConstrType_CONSTR_NOTNULL, pg_query.ConstrType_CONSTR_DEFAULT, pg_query.ConstrType_CONSTR_PRIMARY)
	var b strings.Builder
	if version >= 11 {
		b.WriteString("-- either give it the value existing rows should take as a constant default (PostgreSQL 11+ stores it without a rewrite):\n")
		fmt.Fprintf(&b, "%s NOT NULL DEFAULT <value>;\n", policy.AddColumnSQL(t, bare))
		b.WriteString("-- or add it nullable, backfill it, then add NOT NULL without a long lock:\n")
	} else {
		b.WriteString("-- before PostgreSQL 11 a default rewrites the table: add the column nullable, backfill it, then add NOT NULL without a long lock:\n")
	}
	b.WriteString(policy.AddColumnSQL(t, bare) + ";\n")
	b.WriteString(policy.StepBackfill + "\n")
	b.WriteString(policy.BatchUpdateSQL(t, col.Colname, "<value>") + "\n")
	// A step of its own: after the batch, without it, the NOT VALID CHECK
	// would read as part of the backfill (in a DO block, a migration file).
	b.WriteString("-- then add NOT NULL without a long lock:\n")
	b.WriteString(notNullRecipe(t, col.Colname, version))
	if len(policy.ColumnConstraints(col, pg_query.ConstrType_CONSTR_PRIMARY)) > 0 {
		b.WriteString("\n-- then the PRIMARY KEY: CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... PRIMARY KEY USING INDEX (see the add-primary-key rule).")
	}
	return b.String()
}
