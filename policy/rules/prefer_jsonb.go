package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:       "prefer-jsonb",
		Advisory: true,
		Summary:  "json cannot be indexed or compared; use jsonb",
		Default:  policy.LevelOff,
		Check:    checkPreferJsonb,
		// No Verify: advisory, about a type choice, not a lock.
	})
}

func plainJSON(tn *pg_query.TypeName, _ *pg_query.ColumnDef) bool {
	return typeNameIs(tn, "json")
}

func checkPreferJsonb(c *policy.Check, n *pg_query.Node) {
	t, cols := typeCols(n, plainJSON)
	if len(cols) == 0 {
		return
	}
	sql := retyped(n, plainJSON, func(*pg_query.TypeName) *pg_query.TypeName { return simpleType("jsonb") })
	c.Report(policy.Report{
		Table:   t,
		Message: fmt.Sprintf("%s of %s %s json, which is stored as text and parsed on every access, cannot be indexed with GIN and has no equality operator (DISTINCT and GROUP BY fail); changing it later rewrites the table under ACCESS EXCLUSIVE.", upperFirst(columnList(cols)), t, uses(cols)),
		Detail:  "Keep json only when the exact text (key order, duplicate keys, whitespace) must be preserved.",
		Hint:    advisoryHint("-- the same with jsonb:", sql),
	})
}
