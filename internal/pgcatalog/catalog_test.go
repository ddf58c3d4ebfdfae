package pgcatalog

import "testing"

// TestPlanRows: the estimate of an UPDATE is its scan's, not the
// ModifyTable's 0 (PostgreSQL 15's EXPLAIN (FORMAT JSON), abridged).
func TestPlanRows(t *testing.T) {
	for _, c := range []struct {
		js   string
		want int64
		ok   bool
	}{
		{`[{"Plan": {"Node Type": "ModifyTable", "Operation": "Update", "Plan Rows": 0, "Plans": [{"Node Type": "Seq Scan", "Plan Rows": 300000}]}}]`, 300000, true},
		{`[{"Plan": {"Node Type": "ModifyTable", "Operation": "Delete", "Plan Rows": 12, "Plans": [{"Node Type": "Index Scan", "Plan Rows": 12}]}}]`, 12, true},
		{`[{"Plan": {"Node Type": "Seq Scan", "Plan Rows": 42}}]`, 42, true},
		{`[{"Plan": {"Node Type": "ModifyTable", "Plan Rows": 2.5e6, "Plans": []}}]`, 2500000, true},
		{`not json`, 0, false},
	} {
		got, ok := planRows(c.js)
		if got != c.want || ok != c.ok {
			t.Errorf("planRows(%s) = %d, %v; want %d, %v", c.js, got, ok, c.want, c.ok)
		}
	}
}
