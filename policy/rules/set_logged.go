package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "set-logged",
		Summary:       "ALTER TABLE SET LOGGED / SET UNLOGGED rewrites the table under ACCESS EXCLUSIVE",
		Default:       policy.LevelReject,
		SizeDependent: true,
		Check:         checkSetLogged,
		Verify: &policy.Verification{
			Statement: "ALTER TABLE ledger SET UNLOGGED",
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkRewrite,
			// No online form exists in PostgreSQL: the hint explains the
			// choices in comments only.
			NoRecipe: true,
		},
	})
}

func checkSetLogged(c *policy.Check, n *pg_query.Node) {
	t, cmds := relationCmds(n)
	for _, cmd := range cmds {
		var what, hint string
		switch cmd.Subtype {
		case pg_query.AlterTableType_AT_SetLogged:
			what = "SET LOGGED"
			hint = "-- SET LOGGED has no online form: it copies the whole table into the write-ahead log under ACCESS EXCLUSIVE.\n" +
				"-- Either run it in a maintenance window, with the application stopped, or create a new logged table,\n" +
				"-- copy the rows in batches of about 10,000 and switch the application over to it."
		case pg_query.AlterTableType_AT_SetUnLogged:
			what = "SET UNLOGGED"
			hint = "-- SET UNLOGGED has no online form, and an unlogged table is emptied after a crash and is not replicated.\n" +
				"-- Either run it in a maintenance window, with the application stopped, or create a new UNLOGGED table,\n" +
				"-- copy the rows in batches of about 10,000 and switch the application over to it."
		default:
			continue
		}
		c.Report(policy.Report{
			Table:   t,
			Lock:    policy.LockAccessExclusive,
			Message: fmt.Sprintf("ALTER TABLE %s %s writes a new copy of the whole table and its indexes under an ACCESS EXCLUSIVE lock that blocks all reads and writes until it is done.", t, what),
			Hint:    hint,
		})
	}
}

// relationCmds is AlterTableCmds for tables and materialized views.
func relationCmds(n *pg_query.Node) (policy.Table, []*pg_query.AlterTableCmd) {
	t, cmds, _ := relationCmdsKind(n)
	return t, cmds
}

// relationCmdsKind also returns the statement's own words: "ALTER TABLE"
// or "ALTER MATERIALIZED VIEW".
func relationCmdsKind(n *pg_query.Node) (policy.Table, []*pg_query.AlterTableCmd, string) {
	s := n.GetAlterTableStmt()
	if s == nil || (s.Objtype != pg_query.ObjectType_OBJECT_TABLE && s.Objtype != pg_query.ObjectType_OBJECT_MATVIEW) {
		return policy.Table{}, nil, ""
	}
	kind := "ALTER TABLE"
	if s.Objtype == pg_query.ObjectType_OBJECT_MATVIEW {
		kind = "ALTER MATERIALIZED VIEW"
	}
	var cmds []*pg_query.AlterTableCmd
	for _, c := range s.Cmds {
		if cmd := c.GetAlterTableCmd(); cmd != nil {
			cmds = append(cmds, cmd)
		}
	}
	return policy.TableOf(s.Relation), cmds, kind
}
