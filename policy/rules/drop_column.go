package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:      "drop-column",
		Summary: "DROP COLUMN breaks the application code that still reads or writes the column",
		Default: policy.LevelReject,
		Check:   checkDropColumn,
		Verify: &policy.Verification{
			Statement: "ALTER TABLE ledger DROP COLUMN note",
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkNone,
		},
	})
}

func checkDropColumn(c *policy.Check, n *pg_query.Node) {
	checkCascadeColumns(c, n)
	t, cmds := policy.AlterTableCmds(n)
	if c.Created(t) {
		return // nothing uses a table created in this transaction yet
	}
	for _, cmd := range cmds {
		if cmd.Subtype != pg_query.AlterTableType_AT_DropColumn {
			continue
		}
		col := policy.QuoteIdent(cmd.Name)
		r := policy.Report{
			Table:   t,
			Lock:    policy.LockAccessExclusive,
			Message: fmt.Sprintf("Dropping column %s of %s breaks every running query and ORM model that still reads or writes it (an ORM selects every column it knows by name), from the moment the migration commits.", col, t),
			Hint: fmt.Sprintf("-- deployment 1: remove %[2]s from %[3]s, and deploy it everywhere\n"+
				"-- deployment 2: drop the column in a later migration, saying why it is safe now:\n"+
				"%[6]s\n"+
				"ALTER TABLE %[1]s DROP COLUMN %[4]s%[2]s%[5]s;", t, col, c.CodeOf(), ifExists(cmd.MissingOk), cascade(cmd.Behavior),
				c.Allow("drop-column", cmd.Name+" unused since <release>")),
		}
		if cmd.Behavior == pg_query.DropBehavior_DROP_CASCADE {
			r.Detail = "CASCADE also drops the views, constraints and indexes that use the column."
		} else {
			r.Detail = "The drop itself is quick: PostgreSQL only marks the column dropped; the space is reclaimed as rows are rewritten."
		}
		c.Report(r)
	}
}

func cascade(b pg_query.DropBehavior) string {
	if b == pg_query.DropBehavior_DROP_CASCADE {
		return " CASCADE"
	}
	return ""
}

func ifExists(ok bool) string {
	if ok {
		return "IF EXISTS "
	}
	return ""
}
