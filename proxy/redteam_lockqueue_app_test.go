package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// Red team (issue 21, round 2): the application's statements waiting for a
// row lock through pgguard wait as on PostgreSQL (here 4s, the holder's
// transaction), never cancelled by a lock_timeout pgguard added: alone,
// as MERGE, and in one extended-protocol batch (one Sync, as pgjdbc sends
// a batch) behind a DDL statement of another table that pgguard gives its
// lock_timeout.
func TestRedteamApplicationRowLockWaits(t *testing.T) {
	// (large-dml off: the batch's UPDATE behind a DDL is not estimable ahead.)
	_, addr, _ := guardProxy(t, "lock_timeout: 1s\nlock_queue: {deadline: 10s, threshold: 300ms}\nrules: {large-dml: off}\n", nil)
	ctx := context.Background()
	t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS rt5_t, rt5_o") })
	for _, c := range []struct {
		name  string
		batch []string
		skip  string
	}{
		{"UPDATE alone", []string{"UPDATE rt5_t SET v = 'app' WHERE id = 50"}, ""},
		{"MERGE alone", []string{"MERGE INTO rt5_t t USING (SELECT 50 AS id) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = 'app'"}, ""},
		{"UPDATE behind ALTER TABLE of another table in one batch", []string{"ALTER TABLE rt5_o ADD COLUMN c int", "UPDATE rt5_t SET v = 'app' WHERE id = 50"},
			"redteam: in one extended-protocol batch (one Sync) an UPDATE behind a DDL of another table keeps pgguard's lock_timeout and is cancelled (55P03) after it while waiting for a row lock"},
		{"UPDATE behind CREATE INDEX of another table in one batch", []string{"CREATE INDEX rt5_o_id ON rt5_o (id)", "UPDATE rt5_t SET v = 'app' WHERE id = 50"},
			"redteam: in one extended-protocol batch (one Sync) an UPDATE behind a CREATE INDEX of another table keeps pgguard's lock_timeout and is cancelled (55P03) after it while waiting for a row lock"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.skip != "" {
				t.Skip(c.skip)
			}
			if err := pgExec("guard", "DROP TABLE IF EXISTS rt5_t, rt5_o", "CREATE TABLE rt5_t (id int PRIMARY KEY, v text)",
				"INSERT INTO rt5_t SELECT g, 'x' FROM generate_series(1, 100) g", "CREATE TABLE rt5_o (id int)"); err != nil {
				t.Fatal(err)
			}
			holder := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
			mustExec(t, holder, "BEGIN")
			mustExec(t, holder, "SELECT id FROM rt5_t WHERE id = 50 FOR UPDATE")
			defer commitAfter(holder, 4*time.Second)()
			app, _ := guardConn(t, addr, pgtest.SuperUser, "")
			start := time.Now()
			b := &pgconn.Batch{}
			for _, q := range c.batch {
				b.ExecParams(q, nil, nil, nil, nil)
			}
			_, err := app.PgConn().ExecBatch(ctx, b).ReadAll()
			if err != nil {
				t.Fatalf("the application's %q after %v: %v; want it to wait for the row lock, as on PostgreSQL", c.batch, time.Since(start), err)
			}
		})
	}
}
