package proxy

import (
	"context"
	"fmt"
	"testing"
)

// TestRedteamDomainOfPartitionedTable: a domain used by the key column of
// a partitioned table whose leaves are each small (3,000 rows) but hold
// 24,000 rows together. ALTER DOMAIN ... ADD CONSTRAINT scans every leaf
// while it holds SHARE on all of them (and on the partitioned table) to
// the end: writes to the partitioned table wait for the scan of all
// 24,000 rows, as they do for ALTER TABLE parted ADD CONSTRAINT ...
// CHECK, which pgguard refuses (the partitioned table is sized with its
// leaves). pgguard judged the domain's leaves one by one, each small, and
// let the ALTER DOMAIN through.
func TestRedteamDomainOfPartitionedTable(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	setup := []string{
		"DROP SCHEMA IF EXISTS rt20d_dom CASCADE",
		"CREATE SCHEMA rt20d_dom",
		"CREATE DOMAIN rt20d_dom.k AS int",
		"CREATE TABLE rt20d_dom.parted (id int, k rt20d_dom.k) PARTITION BY RANGE (id)",
	}
	for i := 0; i < 8; i++ {
		setup = append(setup, fmt.Sprintf("CREATE TABLE rt20d_dom.parted_%d PARTITION OF rt20d_dom.parted FOR VALUES FROM (%d) TO (%d)", i, i*3000, (i+1)*3000))
	}
	setup = append(setup, "INSERT INTO rt20d_dom.parted SELECT g, g FROM generate_series(0, 23999) g", "ANALYZE rt20d_dom.parted")
	if err := pgExec("guard", setup...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", "DROP SCHEMA IF EXISTS rt20d_dom CASCADE") })
	conn, _ := guardConn(t, addr, "postgres", "")
	ctx := context.Background()
	// The same scan under the same lock, spelled as a table's constraint.
	_, err := conn.Exec(ctx, "ALTER TABLE rt20d_dom.parted ADD CONSTRAINT parted_k_nonneg CHECK (k >= 0)")
	wantRefusal(t, err, "add-check-constraint")
	_, err = conn.Exec(ctx, "ALTER DOMAIN rt20d_dom.k ADD CONSTRAINT k_nonneg CHECK (VALUE >= 0)")
	if err == nil {
		pgExec("guard", "ALTER DOMAIN rt20d_dom.k DROP CONSTRAINT k_nonneg")
		t.Fatal("ALTER DOMAIN ADD CONSTRAINT on a domain of a partitioned table of 24,000 rows (8 leaves of 3,000): allowed; it scans all 24,000 under SHARE on every leaf")
	}
	pe := wantRefusal(t, err, "alter-domain-constraint")
	t.Logf("%s\n%s", pe.Message, pe.Detail)
}
