package policy

import (
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func TestKeyedWhereText(t *testing.T) {
	for sql, want := range map[string]bool{
		"UPDATE pgbench_accounts SET abalance = abalance + -4321 WHERE aid = 77": true,
		"UPDATE a SET x = 1 WHERE a.id = $1":                                     true,
		`UPDATE "JournalLines" SET memo = 'x' WHERE "id" = 5 AND v > 3`:          true,
		"DELETE FROM a WHERE id IN (1, 2, 3)":                                    true,
		"UPDATE a SET x = 1 WHERE id = 5 OR x IS NULL":                           false,
		"UPDATE a SET x = 1 WHERE x IS NULL":                                     false,
		"UPDATE a SET x = (SELECT 1 WHERE id = 5)":                               false,
		"UPDATE a SET x = 1":                                                     false,
		"UPDATE a SET x = 1 WHERE id = (SELECT max(id) FROM a)":                  false,
		"DELETE FROM a WHERE id IN (SELECT id FROM b) OR true":                   false,
	} {
		if got := keyedWhereText(sql); got != want {
			t.Errorf("keyedWhereText(%s) = %v, want %v", sql, got, want)
		}
	}
}

func TestKeyedWhere(t *testing.T) {
	for sql, want := range map[string]bool{
		"UPDATE a SET x = 1 WHERE id = 5":                  true,
		"UPDATE a SET x = 1 WHERE id = $1 AND v > 3":       true,
		"DELETE FROM a WHERE id IN (1, 2, 3)":              true,
		"UPDATE a SET x = 1 WHERE 'k'::text = code":        true,
		"UPDATE a SET x = 1 WHERE x IS NULL":               false,
		"UPDATE a SET x = 1 WHERE created_at < now()":      false,
		"UPDATE a SET x = 1 WHERE id = 5 OR x IS NULL":     false,
		"UPDATE a SET x = 1":                               false,
		"DELETE FROM a WHERE id = (SELECT max(id) FROM a)": false,
	} {
		tree, err := pg_query.Parse(sql)
		if err != nil {
			t.Fatal(err)
		}
		n := tree.Stmts[0].Stmt
		var where *pg_query.Node
		if u := n.GetUpdateStmt(); u != nil {
			where = u.WhereClause
		} else {
			where = n.GetDeleteStmt().WhereClause
		}
		if got := keyedWhere(where); got != want {
			t.Errorf("keyedWhere(%s) = %v, want %v", sql, got, want)
		}
		// The text check may say "not keyed" where the tree says keyed
		// (it then parses), never the other way round.
		if keyedWhereText(sql) && !want {
			t.Errorf("keyedWhereText(%s) = true for an unkeyed statement", sql)
		}
	}
}
