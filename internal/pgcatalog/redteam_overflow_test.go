package pgcatalog

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/pgguard/pgguard/policy"
)

// TestRedteamHostileSizesOverflow: a sizes file edited by hand to mark
// tables as huge ("rows": 9223372036854775807, the largest int64 the file
// may hold; partitions of 5,000,000,000,000,000,000 rows each) passes
// ReadSizeFile's checks (no negative number), and the sums and products
// pgguard makes of them wrap around: a partitioned table whose partitions
// add up past the largest int64 has a negative size (small: an index
// build on it allowed), and large-dml's scaled estimate of an UPDATE of
// every row of the largest table converts 2^63 to an int64 (negative on
// amd64: allowed). The proxy (Borrowed, uat on a real server) and lint
// (FileCatalog) both. A number too large is as large as it gets, never
// small.
func TestRedteamHostileSizesOverflow(t *testing.T) {
	_, uat := redteamDatabases(t)
	mustExec(t, uat, "CREATE TABLE accounts (id int PRIMARY KEY, status text)")
	mustExec(t, uat, "CREATE TABLE events (at int NOT NULL, n int) PARTITION BY RANGE (at)")
	mustExec(t, uat, "CREATE TABLE events_a PARTITION OF events FOR VALUES FROM (0) TO (100)")
	mustExec(t, uat, "CREATE TABLE events_b PARTITION OF events FOR VALUES FROM (100) TO (200)")
	mustExec(t, uat, "INSERT INTO accounts SELECT g, 'open' FROM generate_series(1, 10) g")
	mustExec(t, uat, "INSERT INTO events SELECT g, g FROM generate_series(1, 150) g")
	analyze(t, uat)
	f, err := ReadSizeFile(strings.NewReader(`{"format":2,"database":"production","exported_at":"2026-12-07T10:42:00Z","search_path":["public"],"relations":[
		{"schema":"public","name":"accounts","kind":"table","rows":9223372036854775807,"bytes":9223372036854775807,"analyzed":true},
		{"schema":"public","name":"events","kind":"partitioned","rows":0,"bytes":0,"analyzed":true},
		{"schema":"public","name":"events_a","kind":"table","parent":"public.events","rows":5000000000000000000,"bytes":5000000000000000000,"analyzed":true},
		{"schema":"public","name":"events_b","kind":"table","parent":"public.events","rows":5000000000000000000,"bytes":5000000000000000000,"analyzed":true}]}`))
	if err != nil {
		t.Fatalf("the hand-edited file is refused (%v): fine, but then the test has nothing to show", err)
	}
	src := NewSizes(f, "production")
	ctx := context.Background()
	b := &Borrowed{Catalog: &Catalog{Q: uat}, Src: StaticSizes{src}}
	lint := FileCatalog{S: src}
	for name, cat := range map[string]policy.Catalog{"proxy (Borrowed)": b, "lint (FileCatalog)": lint} {
		size, ok := cat.TableSize(ctx, "events")
		if !ok || size.Rows < 5000000000000000000 || size.Bytes < 5000000000000000000 {
			t.Errorf("%s: events, two partitions of 5e18 rows and bytes each: %+v (%v), want at least 5e18 of each", name, size, ok)
		}
	}
	for _, sql := range []string{"UPDATE accounts SET status = 'x'", "DELETE FROM events"} {
		rows, ok := b.EstimateRows(ctx, sql)
		if !ok || rows < math.MaxInt64/2 {
			t.Errorf("proxy (Borrowed): %s on production's largest tables estimated at %d rows (%v)", sql, rows, ok)
		}
		rows, ok = lint.EstimateRows(ctx, sql)
		if !ok || rows < math.MaxInt64/2 {
			t.Errorf("lint (FileCatalog): %s estimated at %d rows (%v)", sql, rows, ok)
		}
		rows, ok = b.CountRows(ctx, strings.Replace(strings.Replace(sql, "UPDATE accounts SET status = 'x'", "SELECT 1 FROM accounts", 1), "DELETE FROM events", "SELECT 1 FROM events", 1), 1001)
		if !ok || rows < 1001 {
			t.Errorf("proxy (Borrowed): count of %s: %d (%v), want at least the limit", sql, rows, ok)
		}
	}
}
