package proxy

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// The tables of the large-dml tests, in the guard database. Autovacuum is
// off so that statistics stay as the test left them.
var largeDMLTables struct {
	once sync.Once
	err  error
}

func largeDMLSetup(t *testing.T) {
	t.Helper()
	enforceDatabase(t)
	largeDMLTables.once.Do(func() {
		largeDMLTables.err = pgExec("guard",
			// 150,000 rows, all 'done'; n and m are the same column twice,
			// which the planner takes for independent ones.
			"CREATE TABLE dml_accounts (id bigint PRIMARY KEY, status text NOT NULL, n int NOT NULL, m int NOT NULL) WITH (autovacuum_enabled = off)",
			"INSERT INTO dml_accounts SELECT g, 'done', g % 150, g % 150 FROM generate_series(1, 150000) g",
			"CREATE TABLE dml_src (id bigint PRIMARY KEY) WITH (autovacuum_enabled = off)",
			"INSERT INTO dml_src SELECT g FROM generate_series(1, 150000) g",
			// Analyzed at 1,000 rows, then loaded to 300,000.
			"CREATE TABLE dml_stale (id bigint PRIMARY KEY, v int NOT NULL) WITH (autovacuum_enabled = off)",
			"INSERT INTO dml_stale SELECT g, 0 FROM generate_series(1, 1000) g",
			"ANALYZE dml_stale",
			"INSERT INTO dml_stale SELECT g, 1 FROM generate_series(1001, 300000) g",
			// A partitioned parent that nothing ever analyzes.
			"CREATE TABLE dml_parts (id bigint NOT NULL, v int NOT NULL) PARTITION BY RANGE (id)",
			"CREATE TABLE dml_parts_1 PARTITION OF dml_parts FOR VALUES FROM (0) TO (100000) WITH (autovacuum_enabled = off)",
			"CREATE TABLE dml_parts_2 PARTITION OF dml_parts FOR VALUES FROM (100000) TO (1000000) WITH (autovacuum_enabled = off)",
			"INSERT INTO dml_parts SELECT g, g % 10 FROM generate_series(1, 200000) g",
			"ANALYZE dml_accounts, dml_src, dml_parts_1, dml_parts_2",
			"GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC",
		)
	})
	if largeDMLTables.err != nil {
		t.Fatal(largeDMLTables.err)
	}
}

// unchanged checks, directly, that a refused statement changed no row.
func unchanged(t *testing.T) {
	t.Helper()
	conn := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	for _, q := range []string{
		"SELECT count(*) FROM dml_accounts WHERE status <> 'done' OR n <> m",
		"SELECT count(*) FROM dml_stale WHERE v > 1",
		"SELECT count(*) FROM dml_parts WHERE v > 9",
	} {
		var n int
		if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%s = %d after a refusal: rows changed", q, n)
		}
	}
}

// rawMigration logs in to the guard database through addr as a
// migration tool's session (application_name knex).
func rawMigration(t *testing.T, addr string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn, fe: pgproto3.NewFrontend(conn, conn)}
	c.fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": pgtest.SuperUser, "database": "guard", "application_name": "knex"}})
	c.until(1)
	return c
}

func refusedLargeDML(t *testing.T, msgs []string) {
	t.Helper()
	if !has(msgs, "ErrorResponse ERROR 42501 pgguard: large-dml:") {
		t.Fatalf("not refused by large-dml: %q", msgs)
	}
}

// The outside testers' shapes, each a class of statement that changed
// 150,000–300,000 rows through pgguard in a migration's session: each is
// refused now, and changes nothing.
func TestLargeDMLShapes(t *testing.T) {
	largeDMLSetup(t)
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	migration := func(t *testing.T) *pgx.Conn {
		conn, _ := guardConn(t, addr, pgtest.SuperUser, "application_name=knex")
		return conn
	}

	// 1. An equality is a key only when a unique index covers it.
	t.Run("equality on a column no unique index covers", func(t *testing.T) {
		conn := migration(t)
		for _, q := range []string{
			"UPDATE dml_accounts SET status = 'archived' WHERE status = 'done'",
			"DELETE FROM dml_accounts WHERE status IN ('done', 'failed')",
			"WITH d AS (UPDATE dml_accounts SET status = 'cte' WHERE status = 'done' RETURNING 1) SELECT count(*) FROM d",
		} {
			_, err := conn.Exec(ctx, q)
			wantRefusal(t, err, "large-dml")
			unchanged(t)
		}
		// By the primary key: allowed, and not estimated.
		mustExec(t, conn, "UPDATE dml_accounts SET status = 'done' WHERE id = 7")
		mustExec(t, conn, "UPDATE dml_accounts SET status = 'done' WHERE id IN (8, 9)")
	})

	// 2. Bound parameters, on a server without EXPLAIN GENERIC_PLAN.
	t.Run("bound parameters", func(t *testing.T) {
		const update = "UPDATE dml_accounts SET status = 'bound' WHERE id > $1"
		c := rawMigration(t, addr)
		// knex (node-postgres): text parameters, untyped.
		c.send(&pgproto3.Parse{Query: update}, &pgproto3.Bind{Parameters: [][]byte{[]byte("0")}},
			&pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Sync{})
		refusedLargeDML(t, c.until(1))
		unchanged(t)
		// A binary int8 the Parse declared.
		eight := binary.BigEndian.AppendUint64(nil, 0)
		c.send(&pgproto3.Parse{Query: update, ParameterOIDs: []uint32{20}},
			&pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{eight}}, &pgproto3.Execute{}, &pgproto3.Sync{})
		refusedLargeDML(t, c.until(1))
		unchanged(t)
		// Prepared on its own (Parse, Describe, Sync), bound later.
		c.send(&pgproto3.Parse{Name: "backfill", Query: update}, &pgproto3.Describe{ObjectType: 'S', Name: "backfill"}, &pgproto3.Sync{})
		if got := c.until(1); has(got, "ErrorResponse") {
			t.Fatalf("prepare: %q", got)
		}
		c.send(&pgproto3.Bind{PreparedStatement: "backfill", Parameters: [][]byte{[]byte("0")}}, &pgproto3.Execute{}, &pgproto3.Sync{})
		refusedLargeDML(t, c.until(1))
		unchanged(t)
		// A binary value the Parse left untyped (pgx): the server's
		// inferred type (pg_prepared_statements) decodes it.
		c.send(&pgproto3.Bind{PreparedStatement: "backfill", ParameterFormatCodes: []int16{1}, Parameters: [][]byte{eight}}, &pgproto3.Execute{}, &pgproto3.Sync{})
		refusedLargeDML(t, c.until(1))
		unchanged(t)
		// Untyped and unnamed, in one batch: not estimable, so refused
		// on a large table...
		c.send(&pgproto3.Parse{Query: update}, &pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{eight}},
			&pgproto3.Execute{}, &pgproto3.Sync{})
		got := c.until(1)
		refusedLargeDML(t, got)
		if !strings.Contains(strings.Join(got, "|"), "cannot estimate") {
			t.Fatalf("refused for another reason: %q", got)
		}
		unchanged(t)
		// ... and allowed on a small one.
		c.send(&pgproto3.Parse{Query: "UPDATE small SET v = 'x' WHERE id > $1"}, &pgproto3.Bind{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{{0, 0, 0, 0}}},
			&pgproto3.Execute{}, &pgproto3.Sync{})
		if got := c.until(1); has(got, "ErrorResponse") {
			t.Fatalf("an UPDATE of the small table: %q", got)
		}
		// Few rows: allowed.
		c.send(&pgproto3.Bind{PreparedStatement: "backfill", Parameters: [][]byte{[]byte("149990")}}, &pgproto3.Execute{}, &pgproto3.Sync{})
		if got := c.until(1); !has(got, "CommandComplete UPDATE 10") {
			t.Fatalf("a bound UPDATE of 10 rows: %q", got)
		}
		pgExec("guard", "UPDATE dml_accounts SET status = 'done' WHERE status = 'bound'")
		// Behind BEGIN in its batch (pgjdbc with autocommit off): judged
		// ahead, with its values.
		c.send(&pgproto3.Parse{Query: "BEGIN"}, &pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Parse{Query: update}, &pgproto3.Bind{Parameters: [][]byte{[]byte("0")}}, &pgproto3.Execute{}, &pgproto3.Sync{})
		got = c.until(1)
		refusedLargeDML(t, got)
		if strings.Contains(strings.Join(got, "|"), "cannot estimate") {
			t.Fatalf("not judged ahead: %q", got)
		}
		c.send(&pgproto3.Query{String: "ROLLBACK"})
		c.until(1)
		unchanged(t)
	})

	// 2b. EXECUTE of an SQL-level prepared UPDATE or DELETE: judged with
	// its arguments, as a Bind with its values.
	t.Run("execute of a prepared statement", func(t *testing.T) {
		c := rawMigration(t, addr)
		c.send(&pgproto3.Query{String: "PREPARE sqlbackfill(bigint) AS UPDATE dml_accounts SET status = 'executed' WHERE id > $1"})
		if got := c.until(1); has(got, "ErrorResponse") {
			t.Fatalf("prepare: %q", got)
		}
		c.send(&pgproto3.Query{String: "EXECUTE sqlbackfill(0)"})
		refusedLargeDML(t, c.until(1))
		unchanged(t)
		c.send(&pgproto3.Query{String: "EXECUTE sqlbackfill(149990)"})
		if got := c.until(1); !has(got, "CommandComplete UPDATE 10") {
			t.Fatalf("an EXECUTE of 10 rows: %q", got)
		}
		pgExec("guard", "UPDATE dml_accounts SET status = 'done' WHERE status = 'executed'")
		// Prepared in the same Query.
		c.send(&pgproto3.Query{String: "PREPARE sqlpurge(bigint) AS DELETE FROM dml_accounts WHERE id > $1; EXECUTE sqlpurge(0)"})
		refusedLargeDML(t, c.until(1))
		unchanged(t)
		// Prepared by a Parse of the same unsynced batch and run by an
		// EXECUTE later in it: pg_prepared_statements cannot show it yet,
		// the batch's own Parse does. Judged ahead with the catalog.
		update := "UPDATE dml_accounts SET status = 'executed' WHERE id > $1"
		c.send(&pgproto3.Parse{Name: "batchfill", Query: update, ParameterOIDs: []uint32{20}},
			&pgproto3.Parse{Query: "EXECUTE batchfill(0)"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
		refusedLargeDML(t, c.until(1))
		unchanged(t)
		c.send(&pgproto3.Parse{Name: "batchfill2", Query: update, ParameterOIDs: []uint32{20}},
			&pgproto3.Parse{Query: "EXECUTE batchfill2(149990)"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
		if got := c.until(1); !has(got, "CommandComplete UPDATE 10") {
			t.Fatalf("an EXECUTE of 10 rows prepared in its batch: %q", got)
		}
		pgExec("guard", "UPDATE dml_accounts SET status = 'done' WHERE status = 'executed'")
		// The EXECUTE in a Query sent behind the Parse, in the same write
		// (the server skips nothing: the Query answers, then the Sync).
		c.send(&pgproto3.Parse{Name: "batchfill3", Query: update}, &pgproto3.Query{String: "EXECUTE batchfill3(0)"}, &pgproto3.Sync{})
		refusedLargeDML(t, c.until(2))
		unchanged(t)
		// A PREPARE the batch runs, then its EXECUTE.
		c.send(&pgproto3.Parse{Query: "PREPARE batchpurge(bigint) AS DELETE FROM dml_accounts WHERE id > $1"}, &pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Parse{Query: "EXECUTE batchpurge(0)"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
		refusedLargeDML(t, c.until(1))
		unchanged(t)
	})

	// 2c. A Query right behind a migration's Parse of an UPDATE with a
	// parameter, and no Sync: the client waits for the Query's answer.
	// pgguard looked past the Query for the Parse's Bind, waiting for
	// bytes that never came: the session hung.
	t.Run("query behind a prepared update", func(t *testing.T) {
		c := rawMigration(t, addr)
		c.send(&pgproto3.Parse{Name: "hung", Query: "UPDATE dml_accounts SET status = 'hung' WHERE id > $1"}, &pgproto3.Query{String: "SELECT 2"})
		got := c.until(1)
		if !has(got, "ParseComplete") || !has(got, "DataRow 2") {
			t.Fatalf("Parse, Query: %q", got)
		}
		unchanged(t)
	})

	// 3. MERGE, upserts from a SELECT, COPY of an UPDATE.
	t.Run("merge, upsert, copy", func(t *testing.T) {
		conn := migration(t)
		for _, q := range []string{
			"MERGE INTO dml_accounts a USING dml_src s ON s.id = a.id WHEN MATCHED THEN UPDATE SET status = 'merged'",
			"INSERT INTO dml_accounts SELECT id, 'upserted', 0, 0 FROM dml_src ON CONFLICT (id) DO UPDATE SET status = excluded.status",
		} {
			_, err := conn.Exec(ctx, q)
			wantRefusal(t, err, "large-dml")
			unchanged(t)
		}
		_, err := conn.PgConn().CopyTo(ctx, io.Discard, "COPY (UPDATE dml_accounts SET status = 'copied' WHERE n >= 0 RETURNING id) TO STDOUT")
		wantRefusal(t, err, "large-dml")
		unchanged(t)
		// A MERGE of few rows passes.
		mustExec(t, conn, "MERGE INTO dml_accounts a USING (SELECT 5 AS id) s ON s.id = a.id WHEN MATCHED THEN UPDATE SET status = 'done'")
	})

	// 4. Statistics that cannot back the estimate.
	t.Run("stale statistics, partitions, near the limit", func(t *testing.T) {
		conn := migration(t)
		for _, q := range []string{
			// Analyzed at 1,000 rows (all v = 0): the planner expects ~1 row.
			"UPDATE dml_stale SET v = 2 WHERE v > 0",
			// A partitioned parent (reltuples -1) is not small.
			"UPDATE dml_parts SET v = v + 10 WHERE v >= 0",
			// n and m are one column: the planner expects ~96,000 rows, 120,000 change.
			"UPDATE dml_accounts SET status = 'near' WHERE n < 120 AND m < 120",
			"UPDATE dml_accounts a SET status = 'joined' FROM dml_src s WHERE s.id = a.id AND a.n < 120 AND a.m < 120",
		} {
			_, err := conn.Exec(ctx, q)
			wantRefusal(t, err, "large-dml")
			unchanged(t)
		}
		// The limit is inclusive: exactly 100,000 rows pass (counted, in a
		// transaction block: in a savepoint).
		mustExec(t, conn, "BEGIN")
		// (A DELETE rolled back leaves the table's size as it was: the
		// later estimates stay what they were.)
		if tag := mustExec(t, conn, "DELETE FROM dml_accounts WHERE id <= 100000"); tag.RowsAffected() != 100000 {
			t.Fatalf("DELETE of exactly 100,000 rows: %s", tag)
		}
		mustExec(t, conn, "ROLLBACK")
	})

	// 5. The same statement behind another one of its Query or batch.
	t.Run("behind another statement", func(t *testing.T) {
		conn := migration(t)
		_, err := conn.Exec(ctx, "SET search_path = public; UPDATE dml_accounts SET status = 'multi' WHERE n >= 0")
		wantRefusal(t, err, "large-dml")
		unchanged(t)
		// A session that ran DDL is a migration's too.
		plain, _ := guardConn(t, addr, pgtest.SuperUser, "")
		mustExec(t, plain, "CREATE TABLE IF NOT EXISTS dml_mark (id int)")
		_, err = plain.Exec(ctx, "SELECT 1; UPDATE dml_accounts SET status = 'multi' WHERE status = 'done'")
		wantRefusal(t, err, "large-dml")
		unchanged(t)
		c := rawMigration(t, addr)
		c.send(&pgproto3.Parse{Query: "SELECT 1"}, &pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Parse{Query: "UPDATE dml_accounts SET status = 'batch' WHERE n >= 0"}, &pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Sync{})
		got := c.until(1)
		refusedLargeDML(t, got)
		if !strings.Contains(strings.Join(got, "|"), "DataRow 1") {
			t.Fatalf("the SELECT before it: %q", got)
		}
		unchanged(t)
	})

	// Inside a transaction block the checks of a migration's session (the
	// unique keys, the statistics, the bounded count) are invisible as the
	// estimate is: the client's next row gets the cmin it gets directly,
	// and the block holds the locks it holds directly.
	t.Run("no trace in a transaction block", func(t *testing.T) {
		if err := pgExec("guard", "CREATE TABLE IF NOT EXISTS dml_trace (id int)", "GRANT ALL ON dml_trace TO PUBLIC"); err != nil {
			t.Fatal(err)
		}
		play := func(conn *pgx.Conn) (cmin, locks string) {
			t.Helper()
			mustExec(t, conn, "BEGIN")
			mustExec(t, conn, "INSERT INTO dml_trace VALUES (1)")
			// ~100,000 of 150,000 by the estimate: counted, and allowed.
			mustExec(t, conn, "DELETE FROM dml_accounts WHERE n < 100 AND status = 'done'")
			mustExec(t, conn, "INSERT INTO dml_trace VALUES (2)")
			if err := conn.QueryRow(ctx, "SELECT cmin::text FROM dml_trace WHERE id = 2").Scan(&cmin); err != nil {
				t.Fatal(err)
			}
			if err := conn.QueryRow(ctx, "SELECT string_agg(relation::regclass::text || ' ' || mode, ',' ORDER BY relation::regclass::text, mode) FROM pg_locks WHERE pid = pg_backend_pid() AND relation::regclass::text LIKE 'dml_%' AND relation::regclass::text NOT LIKE 'dml_trace%'").Scan(&locks); err != nil {
				t.Fatal(err)
			}
			mustExec(t, conn, "ROLLBACK")
			return cmin, locks
		}
		wantCmin, wantLocks := play(connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=knex"))
		if cmin, locks := play(migration(t)); cmin != wantCmin || locks != wantLocks {
			t.Fatalf("through pgguard cmin %s, locks %q; directly cmin %s, locks %q", cmin, locks, wantCmin, wantLocks)
		}
	})
}
