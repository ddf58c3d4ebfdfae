package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:      "truncate",
		Summary: "TRUNCATE empties a table for everyone at once, under ACCESS EXCLUSIVE",
		Default: policy.LevelReject,
		Check:   checkTruncate,
		Verify: &policy.Verification{
			Statement: "TRUNCATE ledger",
			Lock:      policy.LockAccessExclusive,
			// TRUNCATE gives the table a new, empty file.
			Work: policy.WorkRewrite,
		},
	})
}

func checkTruncate(c *policy.Check, n *pg_query.Node) {
	s := n.GetTruncateStmt()
	if s == nil {
		return
	}
	for _, rel := range s.Relations {
		t := policy.TableOf(rel.GetRangeVar())
		if t.Name == "" || c.Created(t) || smallLedger(c, t) {
			continue
		}
		r := policy.Report{
			Table:   t,
			Lock:    policy.LockAccessExclusive,
			Message: fmt.Sprintf("TRUNCATE %s deletes every row for good, for every user of the table at once, and waits for an ACCESS EXCLUSIVE lock that queues every read and write behind it.", t),
			Hint: fmt.Sprintf("-- deployment 1: stop the code that reads and writes %[1]s, and keep a backup if you may need the rows\n"+
				"-- then, to remove the rows while the application keeps running, delete them in batches:\n"+
				policy.StepBackfill+"\n"+
				"DELETE FROM %[1]s WHERE ctid = ANY (ARRAY(SELECT ctid FROM %[1]s LIMIT %[2]d));\n"+
				"-- or, once nothing uses the table, truncate it in a later migration:\n"+
				"%[3]s\n"+
				"-- TRUNCATE %[1]s;", t, largeDMLBatch, commentOut(c.Allow("truncate", t.Name+" unused since <release>"))),
		}
		if s.Behavior == pg_query.DropBehavior_DROP_CASCADE {
			r.Detail = "CASCADE also empties every table with a foreign key to it."
		}
		c.Report(r)
	}
}

// smallLedger reports whether t is a migration tool's ledger table
// (IsLedgerTable) that the catalog does not report as large: golang-migrate
// records every version with TRUNCATE schema_migrations and an INSERT, and
// nobody can annotate a tool's own statement. A ledger holds a row per
// migration, so one the catalog cannot size is taken as small; a table of
// a ledger's name that the catalog reports at ledgerMaxRows rows or
// ledgerMaxBytes or more is someone's data and judged as any other.
//
// Other tables are judged whatever their size: TRUNCATE's harm is the
// rows it deletes for good and the code that still reads them, which a
// small table (a list of currencies) suffers as much as a big one, and
// the planner's estimates cannot tell an empty table from one not yet
// analyzed.
func smallLedger(c *policy.Check, t policy.Table) bool {
	if _, ok := policy.IsLedgerTable(t); !ok {
		return false
	}
	if c.Session.Catalog == nil {
		return true
	}
	size, ok := c.Session.Catalog.TableSize(c.Ctx, t.String())
	if !ok {
		return true
	}
	return size.Rows < ledgerMaxRows && size.Bytes < ledgerMaxBytes
}

// A ledger has a row per migration: even a project with years of
// migrations stays far below these.
const (
	ledgerMaxRows  = 10000
	ledgerMaxBytes = 10 << 20
)

// commentOut makes each line of SQL a comment ("--" lines stay as they
// are), for a recipe step the user must choose to run.
func commentOut(sql string) string {
	lines := strings.Split(sql, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "--") {
			lines[i] = "-- " + l
		}
	}
	return strings.Join(lines, "\n")
}
