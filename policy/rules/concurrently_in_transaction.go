package rules

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pgguard/pgguard/policy"
)

func init() {
	policy.Register(policy.Rule{
		ID:      "concurrently-in-transaction",
		Summary: "CONCURRENTLY inside a transaction block fails in PostgreSQL",
		Default: policy.LevelReject,
		Check:   checkConcurrentlyInTransaction,
		Verify: &policy.Verification{
			Statement: "CREATE INDEX CONCURRENTLY ledger_account_id_idx ON ledger (account_id)",
			Error:     "25001", // active_sql_transaction
		},
	})
}

func checkConcurrentlyInTransaction(c *policy.Check, n *pg_query.Node) {
	if !c.InTransactionBlock() {
		return
	}
	var what string
	var t policy.Table
	switch s := n.GetNode().(type) {
	case *pg_query.Node_IndexStmt:
		if s.IndexStmt.Concurrent {
			what, t = "CREATE INDEX CONCURRENTLY", policy.TableOf(s.IndexStmt.Relation)
		}
	case *pg_query.Node_DropStmt:
		if s.DropStmt.Concurrent {
			what = "DROP INDEX CONCURRENTLY"
		}
	case *pg_query.Node_ReindexStmt:
		if policy.IsConcurrent(n) {
			what, t = "REINDEX CONCURRENTLY", policy.TableOf(s.ReindexStmt.Relation)
		}
	case *pg_query.Node_AlterTableStmt:
		for _, cmd := range s.AlterTableStmt.Cmds {
			if pc := cmd.GetAlterTableCmd().GetDef().GetPartitionCmd(); pc != nil && pc.Concurrent {
				what, t = "DETACH PARTITION CONCURRENTLY", policy.TableOf(s.AlterTableStmt.Relation)
			}
		}
	}
	if what == "" {
		return
	}
	where := "inside a transaction block"
	switch {
	case c.Nested:
		where = "inside a DO block or function"
	case !c.Session.InTransaction:
		where = "together with other statements in one query (an implicit transaction)"
	}
	c.Report(policy.Report{
		Table: t,
		Lock:  policy.LockShareUpdateExclusive,
		Message: what + " cannot run " + where + ": PostgreSQL would fail with \"cannot run inside a transaction block\" and abort the migration. " +
			policy.OutsideTransactionFix(c.Session.Tool, what),
		Hint: c.OutsideTransaction() + "\n" + c.SQL() + ";",
	})
}
