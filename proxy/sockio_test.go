package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestUnixSocketUpstream relays through a unix-socket upstream, which the
// raw socket paths serve as well: a 4 MiB value and a 20,000-row result
// (many reads and writes each way), a COPY in, and a rewrite.
func TestUnixSocketUpstream(t *testing.T) {
	_, addr := startProxy(t, func(c *Config) {
		c.Targets[0].Upstream = fmt.Sprintf("%s:%d", pg.SocketDir, pg.Port)
	})
	conn := connect(t, dsn(addr, "trust_user", ""))
	ctx := context.Background()
	var n int
	if err := conn.QueryRow(ctx, "SELECT length(repeat('x', 4 << 20))").Scan(&n); err != nil || n != 4<<20 {
		t.Fatalf("length = %d, %v", n, err)
	}
	var s string
	if err := conn.QueryRow(ctx, "SELECT repeat('y', 4 << 20)").Scan(&s); err != nil || len(s) != 4<<20 {
		t.Fatalf("read %d bytes, %v", len(s), err)
	}
	var sum int64
	rows, err := conn.Query(ctx, "SELECT g FROM generate_series(1, 20000) g")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var g int64
		rows.Scan(&g)
		sum += g
	}
	if rows.Err() != nil || sum != 20000*20001/2 {
		t.Fatalf("sum = %d, %v", sum, rows.Err())
	}
	mustExec(t, conn, "CREATE TEMP TABLE unix_copy (a int, b text)")
	src := [][]any{}
	for i := range 5000 {
		src = append(src, []any{i, strings.Repeat("z", 100)})
	}
	if c, err := conn.CopyFrom(ctx, pgx.Identifier{"unix_copy"}, []string{"a", "b"}, pgx.CopyFromRows(src)); err != nil || c != 5000 {
		t.Fatalf("copied %d rows, %v", c, err)
	}
	mustExec(t, conn, "CREATE TABLE IF NOT EXISTS unix_idx (a int)")
	t.Cleanup(func() { mustExec(t, connect(t, pg.DSN("postgres", "postgres")), "DROP TABLE IF EXISTS unix_idx") })
	// An existing table counts as large without a size catalog answer
	// saying otherwise; either way the statement must come back complete.
	if tag := mustExec(t, conn, "CREATE INDEX unix_idx_a ON unix_idx (a)"); tag.String() != "CREATE INDEX" {
		t.Fatalf("tag %q", tag)
	}
}
