package pgcatalog

import "testing"

// Every ModifyTable of every plan, with the rows of its source plan, not
// of an InitPlan that comes first.
func TestPlanChanges(t *testing.T) {
	js := `[{"Plan": {"Node Type": "ModifyTable", "Operation": "Update", "Relation Name": "big", "Schema": "public", "Plan Rows": 0,
		"Plans": [{"Node Type": "Result", "Parent Relationship": "InitPlan", "Plan Rows": 1},
		          {"Node Type": "Seq Scan", "Parent Relationship": "Outer", "Plan Rows": 150000}]}},
	 {"Plan": {"Node Type": "ModifyTable", "Operation": "Insert", "Relation Name": "small", "Schema": "s", "Conflict Resolution": "UPDATE", "Plan Rows": 0,
		"Plans": [{"Node Type": "Result", "Parent Relationship": "Outer", "Plan Rows": 3}]}}]`
	got, ok := planChanges(js)
	if !ok || len(got) != 2 {
		t.Fatalf("%v %v", got, ok)
	}
	if got[0].Table.String() != "public.big" || got[0].Rows != 150000 || got[0].Verb != "Update" {
		t.Errorf("first: %+v", got[0])
	}
	if got[1].Table.String() != "s.small" || got[1].Rows != 3 || !got[1].Upsert {
		t.Errorf("second: %+v", got[1])
	}
	if rows, ok := planRows(`[{"Plan": {"Node Type": "ModifyTable", "Plan Rows": 0, "Plans": [{"Parent Relationship": "InitPlan", "Plan Rows": 1}, {"Parent Relationship": "Outer", "Plan Rows": 7}]}}]`); !ok || rows != 7 {
		t.Errorf("planRows: %d %v", rows, ok)
	}
	if _, ok := planChanges("not json"); ok {
		t.Error("bad JSON read")
	}
}
