package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:      "detach-partition",
		Summary: "DETACH PARTITION -> DETACH PARTITION CONCURRENTLY (PostgreSQL 14+) when that is legal",
		// The lock is brief and lock_timeout bounds its wait (RULES.md:
		// allow), so the rule reports only where the CONCURRENTLY form can
		// replace the statement; elsewhere DETACH PARTITION runs as sent.
		Default:    policy.LevelRewrite,
		CanRewrite: true,
		Check:      checkDetachPartition,
		Verify: &policy.Verification{
			Setup: []string{
				"ALTER TABLE ledger RENAME TO ledger_2024",
				"CREATE TABLE ledger (LIKE ledger_2024) PARTITION BY RANGE (id)",
				"ALTER TABLE ledger ATTACH PARTITION ledger_2024 FOR VALUES FROM (1) TO (1000000)",
			},
			Statement: "ALTER TABLE ledger DETACH PARTITION ledger_2024",
			Outside:   true,
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkNone,
			// The recipe is not run: between its two transactions DETACH
			// ... CONCURRENTLY holds no lock on the parent and waits for
			// every transaction that has it locked (a virtual-transaction
			// wait, which lock_timeout cancels): the test's open writer
			// makes it fail with 55P03 after the step's 5s lock_timeout.
			// It never blocks the writer; the proxy runs CONCURRENTLY
			// statements without lock_timeout (concurrent_statement_timeout).
			NoRecipe: true,
		},
	})
}

func checkDetachPartition(c *policy.Check, n *pg_query.Node) {
	t, cmds := policy.AlterTableCmds(n)
	if len(cmds) != 1 || cmds[0].Subtype != pg_query.AlterTableType_AT_DetachPartition {
		return // CONCURRENTLY must be the only subcommand
	}
	pc := cmds[0].GetDef().GetPartitionCmd()
	if pc == nil || pc.Concurrent || c.Version < 14 || rewriteBlocker(c) != "" {
		return
	}
	detail := "DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+) holds only SHARE UPDATE EXCLUSIVE on the parent while it waits."
	switch has, known := c.HasDefaultPartition(t); {
	case has || (!known && c.Session.Catalog != nil):
		// PostgreSQL refuses DETACH ... CONCURRENTLY when the table has
		// a DEFAULT partition (55000), so pgguard rewrites only what the
		// catalog says it will run; else the statement runs as sent,
		// under lock_timeout.
		return
	case !known:
		detail += " Without a catalog pgguard cannot tell whether the table has a DEFAULT partition, which makes PostgreSQL refuse it."
	}
	rewrite := appendToCode(c.Text, " CONCURRENTLY")
	if rewrite == "" {
		return
	}
	part := policy.TableOf(pc.Name)
	c.Report(policy.Report{
		Table:   t,
		Lock:    policy.LockAccessExclusive,
		Message: fmt.Sprintf("DETACH PARTITION %s takes an ACCESS EXCLUSIVE lock on %s and the partition: the detach is quick, but while it waits for running queries to finish every other query on the table queues behind it.", part, t),
		Detail:  detail,
		Hint:    c.OutsideTransaction() + "\n" + withSemicolon(appendToCode(c.SQL(), " CONCURRENTLY")),
		Rewrite: rewrite,
	})
}
