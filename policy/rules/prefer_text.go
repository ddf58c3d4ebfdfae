package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:       "prefer-text",
		Advisory: true,
		Summary:  "varchar(n) and char(n) make later length changes migrations; use text",
		Default:  policy.LevelOff,
		Check:    checkPreferText,
		// No Verify: advisory, about a type choice, not a lock.
	})
}

func limitedChar(tn *pg_query.TypeName, _ *pg_query.ColumnDef) bool {
	return (typeNameIs(tn, "varchar") && len(tn.Typmods) > 0) || typeNameIs(tn, "bpchar")
}

func checkPreferText(c *policy.Check, n *pg_query.Node) {
	t, cols := typeCols(n, limitedChar)
	if len(cols) == 0 {
		return
	}
	sql := retyped(n, limitedChar, func(*pg_query.TypeName) *pg_query.TypeName { return simpleType("text") })
	c.Report(policy.Report{
		Table:   t,
		Message: fmt.Sprintf("%s of %s %s varchar(n) or char(n): text performs the same, and lowering the limit later (or changing char(n)) rewrites the table under ACCESS EXCLUSIVE.", upperFirst(columnList(cols)), t, uses(cols)),
		Detail:  "char(n) also pads values with spaces. When the length is a business rule, state it as a CHECK (char_length(col) <= n) constraint, which can be changed with NOT VALID and VALIDATE.",
		Hint:    advisoryHint("-- the same with text columns:", sql),
	})
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
