package rules

import (
	"fmt"
	"github.com/pgguard/pgguard/policy"

	"github.com/pgguard/pgguard/policy/sqltext"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func init() {
	policy.Register(policy.Rule{
		ID:            "create-index",
		Summary:       "CREATE INDEX without CONCURRENTLY blocks writes for the whole build",
		Default:       policy.LevelRewrite,
		CanRewrite:    true,
		SizeDependent: true,
		Check:         checkCreateIndex,
		Verify: &policy.Verification{
			Statement: "CREATE INDEX ledger_account_id_idx ON ledger (account_id)",
			Lock:      policy.LockShare,
			Work:      policy.WorkScan,
		},
	})
}

func checkCreateIndex(c *policy.Check, n *pg_query.Node) {
	s := n.GetIndexStmt()
	if s == nil || s.Concurrent {
		return
	}
	t := policy.TableOf(s.Relation)
	what := "CREATE INDEX"
	if s.Unique {
		what = "CREATE UNIQUE INDEX"
	}
	concurrent := insertConcurrently(c.Text)
	recipe := insertConcurrently(c.SQL())
	r := policy.Report{
		Table:   t,
		Lock:    policy.LockShare,
		Message: fmt.Sprintf("%s on %s holds a SHARE lock that blocks every INSERT, UPDATE and DELETE on the table until the whole index is built.", what, t),
		Hint:    c.OutsideTransaction() + "\n" + recipe + ";",
	}
	partitioned, _ := c.Partitioned(t)
	if partitioned && s.Relation != nil && !s.Relation.Inh {
		// CREATE INDEX ... ON ONLY a partitioned table builds nothing:
		// the parent's index is created invalid and no partition is
		// read (the first step of the fix below).
		return
	}
	var why string
	switch {
	case c.Nested:
		why = "it runs inside a DO block or function, which is always a transaction"
	case c.Session.InTransaction:
		why = "it runs inside a transaction block"
	case !c.Session.Alone:
		why = "it is not the only statement of its query, so it runs in an implicit transaction"
	case partitioned:
		why = fmt.Sprintf("%s is a partitioned table, which cannot be indexed concurrently", t)
		r.Hint = partitionedIndexHint(c.SQL(), s, t)
	case s.IfNotExists && c.InvalidIndex(t.Schema, s.Idxname):
		why = fmt.Sprintf("an INVALID index named %s already exists, and IF NOT EXISTS would keep it", policy.QuoteIdent(s.Idxname))
		r.Hint = fmt.Sprintf("DROP INDEX CONCURRENTLY %s;\n%s", policy.Table{Schema: t.Schema, Name: s.Idxname}, r.Hint)
	}
	if why == "" && concurrent != "" {
		r.Rewrite = concurrent
		r.Detail = "CREATE INDEX CONCURRENTLY builds the same index holding only SHARE UPDATE EXCLUSIVE, which lets reads and writes go on."
	} else if why != "" {
		r.Detail = "pgguard cannot run it as CREATE INDEX CONCURRENTLY because " + why + "."
		// Some tools (knex) print only the message: the fix goes there.
		if partitioned {
			r.Message += " Fix: create the index ON ONLY the parent, then CREATE INDEX CONCURRENTLY on each partition, " + policy.OutsideIndexPhrase(c.Session.Tool) + ", and ALTER INDEX <parent index> ATTACH PARTITION <partition index> for each."
		} else {
			r.Message += " " + policy.OutsideTransactionFix(c.Session.Tool, what+" CONCURRENTLY")
		}
	}
	c.Report(r)
}

// insertConcurrently adds CONCURRENTLY after CREATE [UNIQUE] INDEX,
// keeping the rest of the text (and its comments) as it is.
func insertConcurrently(text string) string {
	t, lx := sqltext.FirstWord(text)
	if !t.WordIs(text, "create") {
		return ""
	}
	for i := 0; i < 3; i++ {
		t = lx.Next()
		for t.Kind == sqltext.TokComment {
			t = lx.Next()
		}
		if t.WordIs(text, "index") {
			return text[:t.End] + " CONCURRENTLY" + text[t.End:]
		}
		if !t.WordIs(text, "unique") {
			return ""
		}
	}
	return ""
}

func partitionedIndexHint(sql string, s *pg_query.IndexStmt, t policy.Table) string {
	name := s.Idxname
	if name == "" {
		name = t.Name + "_idx"
	}
	return "-- a partitioned table cannot be indexed concurrently: create the index on the parent only\n" +
		"-- (it stays invalid until every partition has its index), then index each partition concurrently and attach it:\n" +
		insertOnly(sql) + ";\n" +
		"-- for each partition p of " + t.String() + ":\n" +
		"--   CREATE INDEX CONCURRENTLY p_" + name + " ON p (...same columns...);\n" +
		"--   ALTER INDEX " + policy.QuoteIdent(name) + " ATTACH PARTITION p_" + name + ";"
}

// insertOnly adds ONLY after the ON of CREATE INDEX ... ON table.
func insertOnly(sql string) string {
	lx := &sqltext.Lexer{Src: sql}
	for t := lx.Next(); t.Kind != sqltext.TokEOF; t = lx.Next() {
		if t.WordIs(sql, "on") {
			if n, _ := (&sqltext.Lexer{Src: sql, Pos: t.End}).NextCode(); n.WordIs(sql, "only") {
				return sql
			}
			return sql[:t.End] + " ONLY" + sql[t.End:]
		}
	}
	return sql
}
