package pgcatalog

import (
	"context"
	"testing"
	"time"
)

// TestFileCatalogOnlyParent: lint --sizes estimates a whole-table UPDATE
// ONLY or DELETE FROM ONLY of an inheritance parent at the parent's own
// rows (own_rows), without ONLY at its tree's; a file without own_rows (an
// earlier version's) keeps the tree's, never fewer.
func TestFileCatalogOnlyParent(t *testing.T) {
	own := int64(5)
	f := &SizeFile{Format: SizesFormat, ExportedAt: time.Now(), Relations: []SizeRelation{
		{Schema: "public", Name: "logs", Kind: "table", Rows: 3005, OwnRows: &own},
		{Schema: "public", Name: "items", Kind: "table", Rows: 3000},
	}}
	c := FileCatalog{S: NewSizes(f, "production")}
	ctx := context.Background()
	for sql, want := range map[string]int64{
		"DELETE FROM ONLY logs":       5,
		"UPDATE ONLY logs SET v = 0":  5,
		"DELETE FROM logs":            3005,
		"UPDATE ONLY items SET v = 0": 3000,
	} {
		if got, ok := c.EstimateRows(ctx, sql); !ok || got != want {
			t.Errorf("%s: %d (%v), want %d", sql, got, ok, want)
		}
	}
}
