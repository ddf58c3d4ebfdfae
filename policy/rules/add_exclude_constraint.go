package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "add-exclude-constraint",
		Summary:       "ADD EXCLUDE builds its index under ACCESS EXCLUSIVE, and has no online alternative",
		Default:       policy.LevelReject,
		SizeDependent: true,
		Check:         checkAddExcludeConstraint,
		Verify: &policy.Verification{
			Statement: "ALTER TABLE ledger ADD CONSTRAINT ledger_id_excl EXCLUDE USING btree (id WITH =)",
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkScan,
			// There is no online recipe: PostgreSQL can neither build an
			// exclusion constraint concurrently nor attach one from an index.
			NoRecipe: true,
		},
	})
}

func checkAddExcludeConstraint(c *policy.Check, n *pg_query.Node) {
	t, cmds := policy.AlterTableCmds(n)
	for _, cmd := range cmds {
		k := cmd.GetDef().GetConstraint()
		if cmd.Subtype != pg_query.AlterTableType_AT_AddConstraint || k == nil || k.Contype != pg_query.ConstrType_CONSTR_EXCLUSION {
			continue
		}
		name := policy.ConstraintNameOf(t, k, "")
		c.Report(policy.Report{
			Table:   t,
			Lock:    policy.LockAccessExclusive,
			Message: fmt.Sprintf("Adding exclusion constraint %s to %s builds its index while holding an ACCESS EXCLUSIVE lock, blocking all reads and writes until the whole table has been read and indexed.", policy.QuoteIdent(name), t),
			Detail:  "PostgreSQL has no CONCURRENTLY form of an exclusion constraint and cannot attach one from an existing index.",
			Hint: "-- there is no online way to add an exclusion constraint to a large table. Either run it in a maintenance window,\n" +
				"-- or create a new table with the constraint, copy the rows over in batches while a trigger copies new writes,\n" +
				"-- and swap the tables in one short transaction. Once the constraint holds, annotate the statement:\n" +
				c.Allow("add-exclude-constraint", "maintenance window"),
		})
	}
}
