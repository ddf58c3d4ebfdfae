package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"
)

// What a statement changes besides the rows of the table it names (rule
// large-dml, in a migration's session):
//
//   - a rewrite rule on the table for the statement's event runs its
//     actions with it: EXPLAIN returns one plan per query the rewriter
//     made, and every ModifyTable of every plan is judged on its own
//     table against max_rows. Such a table is always estimated: neither
//     a unique key in the WHERE clause nor the table's small size says
//     anything about the rows its rules change elsewhere.
//   - the functions of the triggers that fire for the event are judged
//     as large_dml_bodies.go says.

// effectsQuestion is what judgeEffects needs to know of a statement.
type effectsQuestion struct {
	verb string // UPDATE, DELETE, INSERT (the event)
	in   string // " (in a WITH query)" or ""
	t    policy.Table
	// sql is the statement to EXPLAIN ("" when there is none).
	sql  string
	hint func() string
	// rows estimates the rows the statement changes of t, for its
	// row-level triggers.
	rows func() (int64, bool)
	// upsert: INSERT ... ON CONFLICT DO UPDATE, which fires UPDATE
	// triggers too.
	upsert bool
}

// judgeEffects judges what a statement on q.t runs besides changing q.t's
// rows. It reports whether q.t has rules for the event: the statement has
// then been judged whole (its own rows as one of the plans' ModifyTables),
// and the caller must not take the shortcuts that look at q.t alone.
func judgeEffects(c *policy.Check, q *effectsQuestion) bool {
	if !c.Session.Migration || c.Session.Catalog == nil || q.t.Name == "" {
		return false
	}
	ec, ok := c.Session.Catalog.(policy.EffectsCatalog)
	if !ok {
		return false
	}
	events := []string{q.verb}
	if q.upsert {
		// ON CONFLICT DO UPDATE fires the table's UPDATE triggers too
		// (its statement-level ones whether or not a row conflicts).
		events = append(events, "UPDATE")
	}
	triggers, rules := effectsOf(c, ec, q.t, events)
	if len(triggers) > 0 {
		rows := q.rows
		if rows == nil {
			rows = func() (int64, bool) { return c.Session.Catalog.EstimateRows(c.Ctx, q.sql) }
		}
		judgeTriggers(c, q.t, q.verb, triggers, rows)
	}
	if len(rules) == 0 || rules[0] != q.verb {
		return false
	}
	judgeRewritten(c, ec, q)
	return true
}

// judgeRewritten judges every ModifyTable of the plans of a statement on
// a table with rules.
func judgeRewritten(c *policy.Check, ec policy.EffectsCatalog, q *effectsQuestion) {
	var changes []policy.TableRows
	ok := false
	if q.sql != "" {
		changes, ok = ec.EstimateChanges(c.Ctx, q.sql)
	}
	if !ok {
		why := "pgguard could not ask the planner for the plans of the statement"
		if c.InTransactionBlock() {
			why = "inside a transaction block pgguard cannot ask the planner for the plans of the rewritten statement without leaving a trace in it"
		}
		c.Report(policy.Report{
			Table:   q.t,
			Lock:    policy.LockRowExclusive,
			Unsized: true,
			Message: fmt.Sprintf("%s%s of %s, whose rewrite rules run other statements with it that pgguard cannot size (%s); in a migration's session every data change must be sized, and backfills of more than %s rows belong in batches outside the migration.",
				q.verb, q.in, q.t, why, thousands(c.MaxDMLRows)),
			Detail: "A rule's action (CREATE RULE ... DO ALSO / DO INSTEAD UPDATE, DELETE or INSERT) can change any number of rows of another table, whatever the statement's own WHERE clause; send the statement on its own, outside a transaction block, so that pgguard can EXPLAIN it.",
			Hint:   "-- the statement and its rules' actions, outside the migration, in batches:\n" + q.hint(),
		})
		return
	}
	for _, ch := range changes {
		own := ch.Table.Name == q.t.Name && (q.t.Schema == "" || q.t.Schema == ch.Table.Schema) && strings.EqualFold(ch.Verb, q.verb)
		if own && q.verb == "INSERT" && !ch.Upsert {
			continue // the statement's own INSERT: not a change of existing rows
		}
		if ch.Rows <= c.MaxDMLRows {
			continue
		}
		what := fmt.Sprintf("%s%s of %s changes about %d rows of %s", q.verb, q.in, q.t, ch.Rows, ch.Table)
		if !own {
			what += " (" + strings.ToUpper(ch.Verb) + " by a rewrite rule on " + q.t.String() + ")"
		}
		c.Report(policy.Report{
			Table: ch.Table,
			Lock:  policy.LockRowExclusive,
			Message: fmt.Sprintf("%s in one statement: it locks each of those rows until it commits, blocking every other write to them, and leaves as many dead row versions at once (bloat, replication lag); backfills of more than %s rows belong in batches outside the migration.",
				what, thousands(c.MaxDMLRows)),
			Detail: "The row count is the planner's estimate (EXPLAIN), for each query the table's rules make of the statement.",
			Hint:   "-- the rules of " + q.t.String() + " run with every statement on it; outside the migration, in batches:\n" + q.hint(),
		})
	}
}
