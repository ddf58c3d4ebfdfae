package pgcatalog

import "testing"

func TestBatchBound(t *testing.T) {
	for _, c := range []struct {
		sql string
		n   int64
		col string
		rng bool
		ok  bool
	}{
		{"UPDATE big SET note = 'n' WHERE big.ctid = ANY (ARRAY(SELECT big.ctid FROM big WHERE note IS DISTINCT FROM 'n' LIMIT 10000))", 10000, "ctid", false, true},
		{"SELECT 1 FROM big WHERE big.ctid = ANY (ARRAY(SELECT big.ctid FROM big LIMIT 500))", 500, "ctid", false, true},
		{"DELETE FROM t WHERE ctid IN (SELECT ctid FROM t LIMIT 7) AND x > 0", 7, "ctid", false, true},
		{"UPDATE t AS a SET x = 1 WHERE a.id IN (SELECT id FROM t ORDER BY id LIMIT 1000)", 1000, "id", false, true},
		{"UPDATE t SET x = 1 WHERE id = ANY ('{1,2,3}'::bigint[])", 3, "id", false, true},
		{"UPDATE t SET x = 1 WHERE id = ANY (ARRAY[1, 2])", 2, "id", false, true},
		{"UPDATE t SET x = 1 WHERE id >= 1 AND id < 10001", 10000, "id", true, true},
		{"UPDATE t SET x = 1 WHERE id BETWEEN 5 AND 14 AND x IS NULL", 10, "id", true, true},
		{"UPDATE t SET x = 1 WHERE 100 > id AND id > 0", 99, "id", true, true},
		// parameters, as their bound values are substituted
		{"UPDATE t SET x = ('x') WHERE id IN (SELECT id FROM t ORDER BY id LIMIT ('1000'))", 1000, "id", false, true},
		{"UPDATE t SET x = ('x') WHERE id >= ('1'::int8) AND id < ('10001'::int8)", 10000, "id", true, true},
		// no bound
		{"UPDATE t SET x = 1 WHERE id >= 'a' AND id < 'b'", 0, "", false, false},
		{"UPDATE t SET x = 1 WHERE id >= 1", 0, "", false, false},
		{"UPDATE t SET x = 1 WHERE id IN (SELECT id FROM t)", 0, "", false, false},
		{"UPDATE t SET x = 1 WHERE id IN (SELECT id FROM t LIMIT 5) OR x = 1", 0, "", false, false},
		{"UPDATE t SET x = 1 WHERE other.id IN (SELECT id FROM t LIMIT 5)", 0, "", false, false},
		{"UPDATE t SET x = 1", 0, "", false, false},
		{"SELECT 1 FROM t, u WHERE t.id IN (SELECT id FROM t LIMIT 5)", 0, "", false, false},
	} {
		n, col, rng, ok := BatchBound(c.sql)
		if n != c.n || col != c.col || rng != c.rng || ok != c.ok {
			t.Errorf("%s: %d %q %v %v, want %d %q %v %v", c.sql, n, col, rng, ok, c.n, c.col, c.rng, c.ok)
		}
	}
}
