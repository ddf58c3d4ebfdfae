package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:       "require-named-index",
		Advisory: true,
		Summary:  "CREATE INDEX without a name gets one chosen by PostgreSQL",
		Default:  policy.LevelOff,
		Check:    checkRequireNamedIndex,
		// No Verify: advisory, about names, not a lock.
	})
}

func checkRequireNamedIndex(c *policy.Check, n *pg_query.Node) {
	s := n.GetIndexStmt()
	if s == nil || s.Idxname != "" {
		return
	}
	t := policy.TableOf(s.Relation)
	var cols []string
	for _, p := range s.IndexParams {
		if e := p.GetIndexElem(); e != nil && e.Name != "" {
			cols = append(cols, e.Name)
		} else {
			cols = append(cols, "expr")
		}
	}
	name := policy.ConstraintName(t, strings.Join(cols, "_"), "idx")
	cp := policy.CloneNode(n)
	cp.GetIndexStmt().Idxname = name
	hint := policy.Deparse(cp)
	if hint != "" {
		hint += ";"
	}
	c.Report(policy.Report{
		Table:   t,
		Message: fmt.Sprintf("This index on %s has no name: PostgreSQL picks one (adding a number when it is taken), so later migrations cannot be sure which name to drop or rebuild, and IF NOT EXISTS cannot be used.", t),
		Hint:    advisoryHint("-- the same with a name:", hint),
	})
}
