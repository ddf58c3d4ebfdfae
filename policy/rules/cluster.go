package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "cluster",
		Summary:       "CLUSTER rewrites the table in index order under ACCESS EXCLUSIVE",
		Default:       policy.LevelReject,
		SizeDependent: true,
		Check:         checkCluster,
		Verify: &policy.Verification{
			Statement: "CLUSTER ledger USING ledger_pkey",
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkRewrite,
			// The recipe's SQL step marks the index (ALTER TABLE ... CLUSTER
			// ON); pg_repack, which then reorders the table, is a shell
			// command the test does not run.
		},
	})
}

func checkCluster(c *policy.Check, n *pg_query.Node) {
	s := n.GetClusterStmt()
	if s == nil {
		return
	}
	if s.Relation == nil {
		c.Report(policy.Report{
			Lock:    policy.LockAccessExclusive,
			Message: "CLUSTER without a table name rewrites every previously clustered table of the database in turn, each under an ACCESS EXCLUSIVE lock that blocks all reads and writes of that table until its copy is written.",
			Hint:    clusterHint(policy.Table{}, ""),
		})
		return
	}
	t := policy.TableOf(s.Relation)
	c.Report(policy.Report{
		Table:   t,
		Lock:    policy.LockAccessExclusive,
		Message: fmt.Sprintf("CLUSTER %s writes a new copy of the whole table and its indexes, sorted, under an ACCESS EXCLUSIVE lock that blocks all reads and writes until it is done.", t),
		Hint:    clusterHint(t, s.Indexname),
	})
}

func clusterHint(t policy.Table, index string) string {
	if t.Name == "" {
		return "-- PostgreSQL has no online CLUSTER. pg_repack reorders every table that has a clustered index, online,\n" +
			"-- holding ACCESS EXCLUSIVE only for a moment at the start and the end of each table; from a shell:\n" +
			"--   pg_repack <database>\n" +
			"-- or run CLUSTER in a maintenance window, with the application stopped."
	}
	h := "-- PostgreSQL has no online CLUSTER. pg_repack reorders the table online by its clustered index,\n" +
		"-- holding ACCESS EXCLUSIVE only for a moment at the start and the end.\n"
	if index != "" {
		h += "-- Mark the index (quick, SHARE UPDATE EXCLUSIVE: reads and writes go on):\n" +
			"ALTER TABLE " + t.String() + " CLUSTER ON " + policy.QuoteIdent(index) + ";\n"
	}
	return h + "-- then, from a shell:\n" +
		"--   pg_repack --table=" + shellTableArg(t) + " <database>\n" +
		"-- or run CLUSTER in a maintenance window, with the application stopped."
}
