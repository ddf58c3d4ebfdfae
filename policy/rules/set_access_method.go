package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "set-access-method",
		Summary:       "ALTER TABLE SET ACCESS METHOD rewrites the table under ACCESS EXCLUSIVE",
		Default:       policy.LevelReject,
		SizeDependent: true,
		Check:         checkSetAccessMethod,
		Verify: &policy.Verification{
			// PostgreSQL 15 does nothing when the method does not change
			// (SET ACCESS METHOD heap on a heap table keeps its
			// relfilenode): switch to a copy of heap under another name.
			Setup:     []string{"CREATE ACCESS METHOD heap2 TYPE TABLE HANDLER heap_tableam_handler"},
			Statement: "ALTER TABLE ledger SET ACCESS METHOD heap2",
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkRewrite,
			// No online form exists: the hint explains it in comments.
			NoRecipe: true,
		},
	})
}

func checkSetAccessMethod(c *policy.Check, n *pg_query.Node) {
	t, cmds, kind := relationCmdsKind(n)
	for _, cmd := range cmds {
		if cmd.Subtype != pg_query.AlterTableType_AT_SetAccessMethod {
			continue
		}
		am := "DEFAULT"
		if cmd.Name != "" {
			am = policy.QuoteIdent(cmd.Name)
		}
		c.Report(policy.Report{
			Table:   t,
			Lock:    policy.LockAccessExclusive,
			Message: fmt.Sprintf("%s %s SET ACCESS METHOD %s writes a new copy of the whole table and its indexes under an ACCESS EXCLUSIVE lock that blocks all reads and writes until it is done.", kind, t, am),
			Detail:  "PostgreSQL skips the rewrite only when the table already uses that access method.",
			Hint: "-- SET ACCESS METHOD has no online form. Either run it in a maintenance window, with the application stopped,\n" +
				"-- or create a new table USING " + am + ", copy the rows in batches of about 10,000 (a trigger keeps new writes in step)\n" +
				"-- and switch the application over to it.",
		})
	}
}
