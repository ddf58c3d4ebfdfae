package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:      "drop-index",
		Summary: "DROP INDEX -> DROP INDEX CONCURRENTLY when that is legal",
		// The lock is brief and lock_timeout bounds its wait (RULES.md:
		// allow), so the rule reports only where the CONCURRENTLY form can
		// replace the statement; elsewhere DROP INDEX runs as sent.
		Default:    policy.LevelRewrite,
		CanRewrite: true,
		Check:      checkDropIndex,
		Verify: &policy.Verification{
			Setup:     []string{"CREATE INDEX ledger_account_id_idx ON ledger (account_id)"},
			Statement: "DROP INDEX ledger_account_id_idx",
			Outside:   true,
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkNone,
		},
	})
}

func checkDropIndex(c *policy.Check, n *pg_query.Node) {
	s := n.GetDropStmt()
	if s == nil || s.RemoveType != pg_query.ObjectType_OBJECT_INDEX || s.Concurrent ||
		len(s.Objects) != 1 || s.Behavior == pg_query.DropBehavior_DROP_CASCADE || rewriteBlocker(c) != "" {
		return // DROP INDEX CONCURRENTLY takes one index, without CASCADE, outside transactions
	}
	idx := droppedName(s.Objects[0])
	if partitioned, _ := c.Partitioned(idx); partitioned {
		return // an index of a partitioned table cannot be dropped concurrently
	}
	rewrite := insertAfterWord(c.Text, " CONCURRENTLY", "index")
	if rewrite == "" {
		return
	}
	c.Report(policy.Report{
		Table:   idx,
		Lock:    policy.LockAccessExclusive,
		Message: fmt.Sprintf("DROP INDEX %s takes an ACCESS EXCLUSIVE lock on its table: the drop is quick, but while it waits for running queries to finish every other query on the table queues behind it.", idx),
		Detail:  "DROP INDEX CONCURRENTLY waits for those queries without blocking anyone, holding only SHARE UPDATE EXCLUSIVE.",
		Hint:    c.OutsideTransaction() + "\n" + withSemicolon(insertAfterWord(c.SQL(), " CONCURRENTLY", "index")),
		Rewrite: rewrite,
	})
}
