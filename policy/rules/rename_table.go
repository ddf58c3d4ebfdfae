package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:      "rename-table",
		Summary: "RENAME TABLE breaks the application code that still uses the old name",
		Default: policy.LevelReject,
		Check:   checkRenameTable,
		// No Verify: a breaking-change rule, and the verification test
		// looks ledger up by name after the statement, which the rename
		// removes. The lock is a brief ACCESS EXCLUSIVE, catalog only.
	})
}

func checkRenameTable(c *policy.Check, n *pg_query.Node) {
	s := n.GetRenameStmt()
	if s == nil || s.RenameType != pg_query.ObjectType_OBJECT_TABLE {
		return
	}
	t := policy.TableOf(s.Relation)
	if c.Created(t) {
		return
	}
	newT := policy.Table{Schema: t.Schema, Name: s.Newname}
	oldName := policy.QuoteIdent(t.Name)
	c.Report(policy.Report{
		Table:   t,
		Lock:    policy.LockAccessExclusive,
		Message: fmt.Sprintf("Renaming table %s to %s breaks every running query and ORM model that still uses %s, from the moment the migration commits until the new code is deployed everywhere.", t, policy.QuoteIdent(s.Newname), oldName),
		Hint: fmt.Sprintf("-- deployment 1: rename, and keep the old name working with a view in the same transaction\n"+
			"-- (a simple view is updatable: INSERT, UPDATE and DELETE through it reach the table)\n"+
			policy.StepBegin+"\n"+
			"%[5]s\n"+
			"ALTER TABLE %[1]s RENAME TO %[4]s;\n"+
			"CREATE VIEW %[1]s AS SELECT * FROM %[2]s;\n"+
			policy.StepCommit+"\n"+
			"-- deployment 2: switch the code and ORM models to %[2]s (columns added to %[2]s later do not show in the view)\n"+
			"-- deployment 3: once nothing uses the old name, drop the view\n"+
			"DROP VIEW %[1]s;", t, newT, oldName, policy.QuoteIdent(s.Newname), c.Allow("rename-table", "the view "+t.Name+" keeps the old name working")),
	})
}
