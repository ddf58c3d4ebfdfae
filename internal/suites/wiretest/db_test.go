package wiretest

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// templateDB is the starting state of every played session.
const templateDB = "wire_template"

// bigRows makes big large for every size-based rule: above the default
// size threshold (10000 rows) and above large-dml's 100k-row estimate.
const bigRows = 300000

// createTemplate creates the template database: big (large), small (a few
// rows) and t1 (empty, no key). Statistics are gathered so that the planner's
// estimates, which the policy asks for, are the same in every clone.
func createTemplate(pg *pgtest.Server) error {
	if _, err := pg.CreateDatabase(templateDB); err != nil {
		return err
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN(pgtest.SuperUser, templateDB))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		"CREATE TABLE big (id bigint PRIMARY KEY, account int NOT NULL, note text)",
		fmt.Sprintf("INSERT INTO big SELECT g, g %% 1000, md5(g::text) FROM generate_series(1, %d) g", bigRows),
		"CREATE TABLE small (id bigint PRIMARY KEY, v text)",
		"INSERT INTO small SELECT g, 'v' || g FROM generate_series(1, 5) g",
		"CREATE TABLE t1 (id bigint, v text)",
		"VACUUM ANALYZE",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

var dbSeq atomic.Int64

// cloneDB creates a fresh copy of the template and returns its name.
// FILE_COPY: with big in it, copying files is about four times faster than
// PostgreSQL 15's default WAL_LOG.
func cloneDB(admin *pgx.Conn) (string, error) {
	name := fmt.Sprintf("wire_%d", dbSeq.Add(1))
	_, err := admin.Exec(context.Background(), "CREATE DATABASE "+name+" TEMPLATE "+templateDB+" STRATEGY FILE_COPY")
	return name, err
}
