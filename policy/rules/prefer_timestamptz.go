package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:       "prefer-timestamptz",
		Advisory: true,
		Summary:  "timestamp without time zone loses the time zone; use timestamptz",
		Default:  policy.LevelOff,
		Check:    checkPreferTimestamptz,
		// No Verify: advisory, about a type choice, not a lock.
	})
}

func plainTimestamp(tn *pg_query.TypeName, _ *pg_query.ColumnDef) bool {
	return typeNameIs(tn, "timestamp")
}

func checkPreferTimestamptz(c *policy.Check, n *pg_query.Node) {
	t, cols := typeCols(n, plainTimestamp)
	if len(cols) == 0 {
		return
	}
	sql := retyped(n, plainTimestamp, func(old *pg_query.TypeName) *pg_query.TypeName {
		tn := simpleType("pg_catalog", "timestamptz")
		tn.Typmods = old.Typmods
		return tn
	})
	c.Report(policy.Report{
		Table:   t,
		Message: fmt.Sprintf("%s of %s %s timestamp without time zone, which stores wall-clock times that mean different instants in different sessions' time zones; converting it later rewrites the table unless the session TimeZone is UTC.", upperFirst(columnList(cols)), t, uses(cols)),
		Hint:    advisoryHint("-- the same with timestamptz (an instant, shown in each session's time zone):", sql),
	})
}
