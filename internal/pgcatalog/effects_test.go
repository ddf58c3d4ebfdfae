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

// What pg_get_function_sqlbody returns (PostgreSQL 15), marked, becomes
// the body's statements; a prosrc is kept as it is, even one that reads
// like a SQL-standard body.
func TestSQLStandardBody(t *testing.T) {
	for in, want := range map[string]string{
		"\x01BEGIN ATOMIC\n UPDATE big SET v = (big.v + 1);\n SELECT 1;\nEND": "UPDATE big SET v = (big.v + 1);\n SELECT 1;",
		"\x01RETURN (a + f_w())":            "SELECT (a + f_w())",
		"\x01BEGIN ATOMIC\nEND":             "",
		"UPDATE big SET v = 1":              "UPDATE big SET v = 1",
		"RETURN 1":                          "RETURN 1",
		"BEGIN ATOMIC UPDATE big SET v = 1": "BEGIN ATOMIC UPDATE big SET v = 1",
	} {
		if got := sqlStandardBody(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
