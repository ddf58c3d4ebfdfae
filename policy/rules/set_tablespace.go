package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "set-tablespace",
		Summary:       "ALTER TABLE SET TABLESPACE copies the table under ACCESS EXCLUSIVE",
		Default:       policy.LevelReject,
		SizeDependent: true,
		Check:         checkSetTablespace,
		Verify: &policy.Verification{
			Setup: []string{
				// A tablespace inside the data directory, so the test needs
				// no directory of its own (a developer option, PG15+ and
				// recent minor releases of 10-14).
				"SET allow_in_place_tablespaces = on",
				"CREATE TABLESPACE verify_space LOCATION ''",
			},
			Statement: "ALTER TABLE ledger SET TABLESPACE verify_space",
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkRewrite,
			// The recipe is pg_repack, a shell command.
			NoRecipe: true,
		},
	})
}

func checkSetTablespace(c *policy.Check, n *pg_query.Node) {
	t, cmds, kind := relationCmdsKind(n)
	for _, cmd := range cmds {
		if cmd.Subtype != pg_query.AlterTableType_AT_SetTableSpace {
			continue
		}
		space := policy.QuoteIdent(cmd.Name)
		c.Report(policy.Report{
			Table:   t,
			Lock:    policy.LockAccessExclusive,
			Message: fmt.Sprintf("%s %s SET TABLESPACE %s copies every file of the relation under an ACCESS EXCLUSIVE lock that blocks all reads and writes until the copy is done.", kind, t, space),
			Hint: "-- move the table online with pg_repack, from a shell (it holds ACCESS EXCLUSIVE only for a moment at the start and the end):\n" +
				"--   pg_repack --no-order --table=" + shellTableArg(t) + " --tablespace=" + cmd.Name + " --moveidx <database>\n" +
				"-- or run SET TABLESPACE in a maintenance window, with the application stopped.\n" +
				"-- New tables go to the new tablespace without a copy once it is the default:\n" +
				"--   ALTER DATABASE <database> SET default_tablespace = " + space + ";",
		})
	}
}
