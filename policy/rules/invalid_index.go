package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:      "invalid-index",
		Summary: "CREATE INDEX IF NOT EXISTS over an INVALID index of the same name does nothing",
		Default: policy.LevelReject,
		Check:   checkInvalidIndex,
		// No Verify: the harm is an index that silently stays INVALID, not
		// a lock; the fixtures cover the catalog answer.
	})
}

func checkInvalidIndex(c *policy.Check, n *pg_query.Node) {
	s := n.GetIndexStmt()
	if s == nil || !s.IfNotExists || !s.Concurrent {
		// Without CONCURRENTLY, create-index reports the same index
		// and its hint drops the invalid one first.
		return
	}
	t := policy.TableOf(s.Relation)
	if !c.InvalidIndex(t.Schema, s.Idxname) {
		return
	}
	idx := policy.Table{Schema: t.Schema, Name: s.Idxname}
	c.Report(policy.Report{
		Table:   t,
		Lock:    policy.LockShareUpdateExclusive,
		Message: fmt.Sprintf("An INVALID index %s already exists on the server (left by a failed or cancelled CREATE INDEX CONCURRENTLY), so IF NOT EXISTS would skip the build and leave %s without a usable index.", idx, t),
		Detail:  "An invalid index is not used by queries but is still updated by every write.",
		Hint:    c.OutsideTransaction() + fmt.Sprintf("\nDROP INDEX CONCURRENTLY IF EXISTS %s;\n%s;", idx, c.SQL()),
	})
}
