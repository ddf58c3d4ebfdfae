package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:      "rename-column",
		Summary: "RENAME COLUMN breaks the application code that still uses the old name",
		Default: policy.LevelReject,
		Check:   checkRenameColumn,
		Verify: &policy.Verification{
			Statement: "ALTER TABLE ledger RENAME COLUMN note TO memo",
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkNone,
		},
	})
}

func checkRenameColumn(c *policy.Check, n *pg_query.Node) {
	s := n.GetRenameStmt()
	if s == nil || s.RenameType != pg_query.ObjectType_OBJECT_COLUMN || s.RelationType != pg_query.ObjectType_OBJECT_TABLE {
		return
	}
	t := policy.TableOf(s.Relation)
	if c.Created(t) {
		return // nothing uses a table created in this transaction yet
	}
	typ, ok := c.ColumnType(t, s.Subname)
	if !ok {
		typ = "<type of " + policy.QuoteIdent(s.Subname) + ">"
	}
	oldCol, newCol := policy.QuoteIdent(s.Subname), policy.QuoteIdent(s.Newname)
	c.Report(policy.Report{
		Table:   t,
		Lock:    policy.LockAccessExclusive,
		Message: fmt.Sprintf("Renaming column %s of %s to %s breaks every running query and ORM model that still uses %s, from the moment the migration commits until the new code is deployed everywhere.", oldCol, t, newCol, oldCol),
		Hint: fmt.Sprintf("-- deployment 1: add the new column, and make the application write both columns\n"+
			"ALTER TABLE %[1]s ADD COLUMN %[3]s %[4]s;\n"+
			"-- deployment 2: backfill in batches, then read %[3]s\n"+policy.StepBackfill+"\n"+
			"UPDATE %[1]s SET %[3]s = %[2]s WHERE ctid = ANY (ARRAY(SELECT ctid FROM %[1]s WHERE %[3]s IS NULL AND %[2]s IS NOT NULL LIMIT 10000));\n"+
			"-- deployment 3: stop using %[2]s in the application, then drop it in a later migration\n"+
			"%[5]s\n"+
			"ALTER TABLE %[1]s DROP COLUMN %[2]s;", t, oldCol, newCol, typ, c.Allow("drop-column", s.Subname+" unused since <release>")),
	})
}
