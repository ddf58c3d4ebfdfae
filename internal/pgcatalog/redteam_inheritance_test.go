package pgcatalog

import (
	"context"
	"testing"
)

// TestRedteamOnlyParentInheritanceDiffers: inheritance differs between the
// environments. uat's items keeps most of its rows in an inheritance
// child (items_old INHERITS items: 1 row in the parent, 99 in the child),
// production's items is a plain table of 3,000 rows. UPDATE ONLY items
// changes the parent's rows: all 3,000 in production, whose own planner
// says so. Borrowed scales uat's estimate (the parent's 1 row) by uat's
// size of items, which counts the child's rows (100): 1% of production's
// 3,000, 30 rows, where production's proxy estimates 3,000. And the other
// way round (production's rows in a child, uat plain) the estimate is all
// of production's tree where production's planner counts the parent's
// alone: the file's rows of a parent with inheritance children count
// theirs, and nothing in it said the parent's own.
//
// Fixed: the export says a parent's own rows (own_rows), and a statement
// with ONLY is scaled by the parent's own rows on both sides.
func TestRedteamOnlyParentInheritanceDiffers(t *testing.T) {
	prod, uat := redteamDatabases(t)
	mustExec(t, prod, "CREATE TABLE items (id int, v int)")
	mustExec(t, prod, "INSERT INTO items SELECT g, g FROM generate_series(1, 3000) g")
	mustExec(t, prod, "CREATE TABLE logs (id int, v int)")
	mustExec(t, prod, "CREATE TABLE logs_old () INHERITS (logs)")
	mustExec(t, prod, "INSERT INTO logs SELECT g, g FROM generate_series(1, 5) g")
	mustExec(t, prod, "INSERT INTO logs_old SELECT g, g FROM generate_series(1, 3000) g")
	mustExec(t, uat, "CREATE TABLE items (id int, v int)")
	mustExec(t, uat, "CREATE TABLE items_old () INHERITS (items)")
	mustExec(t, uat, "INSERT INTO items SELECT g, g FROM generate_series(1, 1) g")
	mustExec(t, uat, "INSERT INTO items_old SELECT g, g FROM generate_series(1, 99) g")
	mustExec(t, uat, "CREATE TABLE logs (id int, v int)")
	mustExec(t, uat, "INSERT INTO logs SELECT g, g FROM generate_series(1, 10) g")
	analyze(t, prod)
	analyze(t, uat)
	b := borrowFrom(t, prod, uat)
	ctx := context.Background()
	for _, sql := range []string{"UPDATE ONLY items SET v = 0", "DELETE FROM ONLY logs"} {
		truth, ok := (&Catalog{Q: prod}).EstimateRows(ctx, sql)
		if !ok {
			t.Fatalf("%s: production's planner cannot say", sql)
		}
		got, ok := b.EstimateRows(ctx, sql)
		if !ok || got < truth*8/10 || got > truth*12/10+10 {
			t.Errorf("%s: uat borrowing production's sizes estimates %d rows (%v); production's own proxy %d", sql, got, ok, truth)
		}
	}
}
