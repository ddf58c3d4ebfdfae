package rules

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
		"DELETE FROM a WHERE id IN (SELECT id FROM b)":                           false,
		`UPDATE "public"."User" SET "name" = $1 WHERE ("public"."User"."id" = $2 AND 1=1) RETURNING "public"."User"."id"`: true,
		`DELETE FROM "public"."Post" WHERE ("public"."Post"."id" = $1 AND 1=1)`:                                           true,
		`UPDATE "user" SET "name" = $1, "updatedAt" = CURRENT_TIMESTAMP WHERE "id" IN ($2)`:                               true,
		"UPDATE a SET x = 1 WHERE id = 12345 RETURNING x":                                                                 true,
		"UPDATE a SET x = 1 WHERE id = '7'::bigint":                                                                       true,
		"UPDATE a SET x = 1 WHERE (id = 5 AND y) OR z":                                                                    false,
		"UPDATE a SET x = 1 WHERE (id = 5 AND y) = false":                                                                 false,
		"UPDATE a SET x = 1 WHERE id = 5 IS NOT TRUE":                                                                     false,
		"UPDATE a SET x = 1 WHERE id = 1 + x":                                                                             false,
		"UPDATE a SET x = 1 WHERE id = 5 AND (y OR z)":                                                                    true,
		"UPDATE a SET x = 1 WHERE (id = 5 OR y)":                                                                          false,
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
		"DELETE FROM a WHERE id IN (SELECT id FROM b)":     false,
		`UPDATE "public"."User" SET "name" = $1 WHERE ("public"."User"."id" = $2 AND 1=1) RETURNING "public"."User"."id"`: true,
		"UPDATE a SET x = 1 WHERE (id = 5 AND y) = false":                                                                 false,
		"UPDATE a SET x = 1 WHERE id = 5 IS NOT TRUE":                                                                     false,
		"UPDATE a SET x = 1 WHERE (id = 5 AND y) OR z":                                                                    false,
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
