package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:         "refresh-materialized-view",
		Summary:    "REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks every read of the view for the whole refresh",
		Default:    policy.LevelRewrite,
		CanRewrite: true,
		// Not size-dependent: the refresh takes as long as the view's
		// query, which a small view over large tables does not tell.
		Check: checkRefreshMatView,
		Verify: &policy.Verification{
			// The test observes the relation named ledger: make it a
			// materialized view over the real table.
			Setup: []string{
				"ALTER TABLE ledger RENAME TO ledger_rows",
				"CREATE MATERIALIZED VIEW ledger AS SELECT * FROM ledger_rows",
				"CREATE UNIQUE INDEX ledger_id_key ON ledger (id)",
			},
			Statement: "REFRESH MATERIALIZED VIEW ledger",
			Lock:      policy.LockAccessExclusive,
			Work:      policy.WorkRewrite,
			// The recipe, REFRESH ... CONCURRENTLY, takes EXCLUSIVE: it
			// blocks only writes, which a materialized view never gets, and
			// the test's writer cannot lock a materialized view at all.
			NoRecipe: true,
		},
	})
}

func checkRefreshMatView(c *policy.Check, n *pg_query.Node) {
	s := n.GetRefreshMatViewStmt()
	if s == nil || s.Concurrent || s.SkipData {
		return // WITH NO DATA only empties the view: no query runs
	}
	t := policy.TableOf(s.Relation)
	if c.Created(t) {
		return
	}
	r := policy.Report{
		Table:   t,
		Lock:    policy.LockAccessExclusive,
		Message: fmt.Sprintf("REFRESH MATERIALIZED VIEW %s holds an ACCESS EXCLUSIVE lock that blocks every read of the view until its query has run again in full.", t),
	}
	concurrent := insertAfterWord(c.Text, " CONCURRENTLY", "view")
	recipe := withSemicolon(insertAfterWord(c.SQL(), " CONCURRENTLY", "view"))
	var unique, uniqueKnown, populated, populatedKnown bool
	if c.Session.Catalog != nil {
		unique, uniqueKnown = c.Session.Catalog.HasUniqueIndex(c.Ctx, t.String())
		if p, ok := c.Session.Catalog.(policy.MatViewPopulater); ok {
			populated, populatedKnown = p.MatViewPopulated(c.Ctx, t.String())
		}
	}
	switch {
	case !uniqueKnown || !unique:
		if uniqueKnown {
			r.Detail = fmt.Sprintf("%s has no unique index on plain columns, which REFRESH ... CONCURRENTLY needs.", t)
		} else {
			r.Detail = fmt.Sprintf("pgguard cannot tell whether %s has the unique index that REFRESH ... CONCURRENTLY needs.", t)
		}
		r.Hint = "-- once: a unique index on plain columns of the view (no expression, no WHERE), built without blocking reads\n" +
			c.OutsideTransaction() + "\n" +
			"CREATE UNIQUE INDEX CONCURRENTLY " + policy.QuoteIdent(t.Name+"_key") + " ON " + t.String() + " (<columns that identify a row>);\n" +
			"-- then refresh without blocking reads (it takes EXCLUSIVE, which blocks only other refreshes and DDL):\n" + recipe
	case populatedKnown && !populated:
		return // the first refresh of a view created WITH NO DATA: nobody can read it yet
	default:
		// Unlike CREATE INDEX CONCURRENTLY, REFRESH ... CONCURRENTLY may
		// run inside a transaction block.
		r.Hint = recipe
		why := ""
		switch {
		case !populatedKnown:
			why = fmt.Sprintf("it cannot tell whether %s is populated (REFRESH ... CONCURRENTLY fails on a view that is not)", t)
		case concurrent == "":
			why = "the statement could not be rewritten"
		}
		if why == "" {
			r.Rewrite = concurrent
			r.Detail = "REFRESH ... CONCURRENTLY builds the new contents aside and merges them in, holding only EXCLUSIVE, which lets reads go on."
		} else {
			r.Detail = "pgguard cannot run it as REFRESH MATERIALIZED VIEW CONCURRENTLY because " + why + "."
		}
	}
	c.Report(r)
}
