package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "reindex",
		Summary:       "REINDEX without CONCURRENTLY blocks writes to the table and every query that would use the index",
		Default:       policy.LevelRewrite,
		CanRewrite:    true,
		SizeDependent: true,
		Check:         checkReindex,
		Verify: &policy.Verification{
			// PostgreSQL 15: SHARE on ledger, ACCESS EXCLUSIVE on each of
			// its indexes, and a full scan of ledger to rebuild them.
			Statement: "REINDEX TABLE ledger",
			Lock:      policy.LockShare,
			Work:      policy.WorkScan,
		},
	})
}

func checkReindex(c *policy.Check, n *pg_query.Node) {
	s := n.GetReindexStmt()
	if s == nil || policy.IsConcurrent(n) {
		return
	}
	var target, what string
	var t policy.Table
	switch s.Kind {
	case pg_query.ReindexObjectType_REINDEX_OBJECT_INDEX:
		t = policy.TableOf(s.Relation)
		what, target = "REINDEX INDEX "+t.String(), "its table"
	case pg_query.ReindexObjectType_REINDEX_OBJECT_TABLE:
		t = policy.TableOf(s.Relation)
		what, target = "REINDEX TABLE "+t.String(), t.String()
	case pg_query.ReindexObjectType_REINDEX_OBJECT_SCHEMA:
		what, target = "REINDEX SCHEMA "+policy.QuoteIdent(s.Name), "each table of the schema in turn"
	case pg_query.ReindexObjectType_REINDEX_OBJECT_DATABASE:
		what, target = "REINDEX DATABASE", "each table of the database in turn"
	case pg_query.ReindexObjectType_REINDEX_OBJECT_SYSTEM:
		what, target = "REINDEX SYSTEM", "each system catalog in turn"
	default:
		return
	}
	r := policy.Report{
		Table: t,
		Lock:  policy.LockShare,
		Message: fmt.Sprintf("%s holds a SHARE lock on %s, which blocks every INSERT, UPDATE and DELETE, and an ACCESS EXCLUSIVE lock on each index it rebuilds, which blocks every query whose planning touches that index, until the rebuild is done.",
			what, target),
	}
	concurrent := insertAfterWord(c.Text, " CONCURRENTLY", "index", "table", "schema", "database")
	recipe := insertAfterWord(c.SQL(), " CONCURRENTLY", "index", "table", "schema", "database")
	var why string
	var excl []string
	// skipsCatalogs: REINDEX DATABASE rebuilds the system catalogs before
	// PostgreSQL 16, and its CONCURRENTLY form skips them all.
	skipsCatalogs := false
	switch s.Kind {
	case pg_query.ReindexObjectType_REINDEX_OBJECT_INDEX, pg_query.ReindexObjectType_REINDEX_OBJECT_TABLE:
		excl = c.ExclusionIndexes(t)
	case pg_query.ReindexObjectType_REINDEX_OBJECT_SCHEMA:
		if s.Name != "pg_catalog" {
			excl = c.ExclusionIndexesIn(s.Name)
		}
	case pg_query.ReindexObjectType_REINDEX_OBJECT_DATABASE:
		excl = c.ExclusionIndexesIn("")
		skipsCatalogs = c.Version < 16
	}
	switch {
	case s.Kind == pg_query.ReindexObjectType_REINDEX_OBJECT_SYSTEM:
		r.Detail = "System catalogs cannot be reindexed concurrently: run REINDEX SYSTEM in a maintenance window."
		r.Hint = "-- no online form: run it during a maintenance window, with the application stopped\n-- " + c.SQL()
		c.Report(r)
		return
	case s.Kind == pg_query.ReindexObjectType_REINDEX_OBJECT_SCHEMA && s.Name == "pg_catalog",
		s.Kind != pg_query.ReindexObjectType_REINDEX_OBJECT_SCHEMA && c.SystemCatalog(t):
		// PostgreSQL refuses REINDEX TABLE|INDEX CONCURRENTLY of a
		// catalog (0A000) and skips every table of REINDEX SCHEMA
		// pg_catalog CONCURRENTLY, rebuilding nothing.
		r.Detail = "System catalogs cannot be reindexed concurrently: run it in a maintenance window."
		r.Hint = "-- no online form: run it during a maintenance window, with the application stopped\n-- " + c.SQL()
		c.Report(r)
		return
	case c.Version < 12:
		r.Detail = fmt.Sprintf("REINDEX CONCURRENTLY needs PostgreSQL 12; this server is %d.", c.Version)
		r.Hint = reindexBefore12Hint(s, t, c.Session.Tool)
		c.Report(r)
		return
	case s.Kind == pg_query.ReindexObjectType_REINDEX_OBJECT_INDEX && len(excl) > 0:
		// PostgreSQL refuses it (0A000).
		r.Detail = "The index backs an exclusion constraint, which PostgreSQL cannot rebuild concurrently."
		r.Hint = "-- no online form for an exclusion constraint's index: run it when writes to the table can wait\n" + withSemicolon(c.SQL())
		c.Report(r)
		return
	case skipsCatalogs || len(excl) > 0 && (s.Kind == pg_query.ReindexObjectType_REINDEX_OBJECT_SCHEMA ||
		s.Kind == pg_query.ReindexObjectType_REINDEX_OBJECT_DATABASE):
		// PostgreSQL would run REINDEX SCHEMA|DATABASE CONCURRENTLY but
		// skip these with a WARNING: the rewrite would not do what was
		// asked. The recipe is the concurrent form and, apart, what it
		// skips.
		var skips []string
		if skipsCatalogs {
			skips = append(skips, "every system catalog (which REINDEX DATABASE rebuilds before PostgreSQL 16)")
		}
		if len(excl) > 0 {
			skips = append(skips, "the indexes of exclusion constraints ("+strings.Join(excl, ", ")+")")
		}
		form := "REINDEX SCHEMA"
		if s.Kind == pg_query.ReindexObjectType_REINDEX_OBJECT_DATABASE {
			form = "REINDEX DATABASE"
		}
		why = form + " CONCURRENTLY skips " + strings.Join(skips, " and ") + ", which PostgreSQL cannot rebuild concurrently"
		r.Hint = c.OutsideTransaction() + "\n" + withSemicolon(recipe)
		if skipsCatalogs {
			system := "REINDEX SYSTEM"
			if s.Name != "" {
				system += " " + policy.QuoteIdent(s.Name)
			}
			r.Hint += "\n-- it skips the system catalogs, which have no online rebuild: rebuild them in a maintenance window\n" + system + ";"
		}
		if len(excl) > 0 {
			r.Hint += "\n-- it skips the exclusion constraints' indexes, which have no online rebuild: rebuild them when writes can wait"
			for _, x := range excl {
				r.Hint += "\nREINDEX INDEX " + x + ";"
			}
		}
		r.Detail = "pgguard cannot run it as " + form + " CONCURRENTLY because " + why + "."
		c.Report(r)
		return
	case len(excl) > 0:
		// PostgreSQL would run REINDEX TABLE CONCURRENTLY but skip these
		// indexes with a WARNING: the rewrite would not do what was asked.
		why = "REINDEX TABLE CONCURRENTLY skips the indexes of exclusion constraints (" + strings.Join(excl, ", ") + "), which PostgreSQL cannot rebuild concurrently"
		r.Hint = c.OutsideTransaction() + "\n" + withSemicolon(recipe) +
			"\n-- it skips the exclusion constraints' indexes, which have no online rebuild: rebuild them when writes can wait"
		for _, x := range excl {
			r.Hint += "\nREINDEX INDEX " + x + ";"
		}
		r.Detail = "pgguard cannot run it as REINDEX CONCURRENTLY because " + why + "."
		c.Report(r)
		return
	default:
		why = rewriteBlocker(c)
	}
	r.Hint = c.OutsideTransaction() + "\n" + withSemicolon(recipe)
	if why == "" && concurrent != "" {
		r.Rewrite = concurrent
		r.Detail = "REINDEX CONCURRENTLY rebuilds the same indexes holding only SHARE UPDATE EXCLUSIVE, which lets reads and writes go on."
	} else if why != "" {
		r.Detail = "pgguard cannot run it as REINDEX CONCURRENTLY because " + why + "."
	}
	c.Report(r)
}

// reindexBefore12Hint rebuilds an index without REINDEX CONCURRENTLY.
func reindexBefore12Hint(s *pg_query.ReindexStmt, t policy.Table, tool policy.Tool) string {
	name := "<index>"
	if s.Kind == pg_query.ReindexObjectType_REINDEX_OBJECT_INDEX {
		name = t.String()
	}
	return policy.OutsideTransactionHintFor(tool) + "\n" +
		"-- before PostgreSQL 12, build a copy of each index concurrently and swap it in\n" +
		"-- (indexes that back a constraint need ALTER TABLE ... ADD CONSTRAINT ... USING INDEX instead):\n" +
		"--   CREATE INDEX CONCURRENTLY <new_index> ON <table> (...the same definition as " + name + "...);\n" +
		"--   DROP INDEX CONCURRENTLY " + name + ";\n" +
		"--   ALTER INDEX <new_index> RENAME TO " + name + ";"
}
