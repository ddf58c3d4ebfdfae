package proxy

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// An UPDATE of a large table that an earlier statement of the transaction
// locked ACCESS EXCLUSIVE is refused however few rows it picks (rule
// large-dml), in the simple and the extended protocol, as pgguard lint
// refuses it; once the transaction is over, the same UPDATE runs.
func TestDMLUnderExclusiveLockRefused(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			const update = "UPDATE big SET note = note WHERE id = 1"
			mustExec(t, conn, "BEGIN")
			mustExec(t, conn, "LOCK TABLE big IN ACCESS EXCLUSIVE MODE")
			_, err := conn.Exec(ctx, update, mode)
			wantRefusal(t, err, "large-dml")
			mustExec(t, conn, "ROLLBACK")
			if _, err := conn.Exec(ctx, update, mode); err != nil {
				t.Fatalf("%s after the transaction: %v", update, err)
			}
		})
	}
}
