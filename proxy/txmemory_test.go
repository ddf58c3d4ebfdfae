package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// txmRows is the size of the tables of these tests: large for the policy
// (size_thresholds.rows is 10,000), quick to make.
const txmRows = 20000

// txmTable creates a large table (id, note) in the guard database, dropped
// when the test ends.
func txmTable(t *testing.T, name string) {
	t.Helper()
	if err := pgExec("guard",
		"DROP TABLE IF EXISTS "+name+" CASCADE",
		fmt.Sprintf("CREATE TABLE %s AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, %d) g", name, txmRows),
		"ANALYZE "+name,
		"GRANT ALL ON "+name+" TO PUBLIC",
	); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS "+name+" CASCADE") })
}

// rowsOf counts a table's rows (matching where, if not empty) straight on
// the server; -1 when the table does not exist.
func rowsOf(t *testing.T, table, where string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN(pgtest.SuperUser, "guard"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		return -1
	}
	q := "SELECT count(*) FROM " + table
	if where != "" {
		q += " WHERE " + where
	}
	var n int
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

var txmModes = []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec}

// CREATE TABLE IF NOT EXISTS of a table that exists creates nothing (the
// server only says so in a NOTICE): the table is not "created in this
// transaction", and DROP TABLE of it, with its rows, is refused; also
// for CREATE TABLE ... AS, and when both come in one Query.
func TestIfNotExistsDoesNotExemptExistingTable(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	txmTable(t, "txm_accounts")
	for _, mode := range txmModes {
		for _, create := range []string{
			"CREATE TABLE IF NOT EXISTS txm_accounts (id int)",
			"CREATE TABLE IF NOT EXISTS txm_accounts AS SELECT 1 AS id",
			"CREATE UNLOGGED TABLE IF NOT EXISTS public.txm_accounts (id int)",
		} {
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			mustExec(t, conn, "BEGIN")
			if _, err := conn.Exec(ctx, create, mode); err != nil {
				t.Fatalf("%s: %v", create, err)
			}
			for _, stmt := range []string{"DROP TABLE txm_accounts", "TRUNCATE txm_accounts"} {
				_, err := conn.Exec(ctx, stmt, mode)
				wantRefusal(t, err, map[bool]string{true: "drop-table", false: "truncate"}[strings.HasPrefix(stmt, "DROP")])
				mustExec(t, conn, "ROLLBACK")
				mustExec(t, conn, "BEGIN")
				if _, err := conn.Exec(ctx, create, mode); err != nil {
					t.Fatalf("%s: %v", create, err)
				}
			}
			mustExec(t, conn, "COMMIT")
			if n := rowsOf(t, "txm_accounts", ""); n != txmRows {
				t.Fatalf("%s %s: txm_accounts has %d rows, want %d", mode, create, n, txmRows)
			}
		}
	}
	// In one Query (an implicit transaction).
	conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
	_, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS txm_accounts (id int); DROP TABLE txm_accounts", pgx.QueryExecModeSimpleProtocol)
	wantRefusal(t, err, "drop-table")
	if n := rowsOf(t, "txm_accounts", ""); n != txmRows {
		t.Fatalf("txm_accounts has %d rows, want %d", n, txmRows)
	}
	// A table the IF NOT EXISTS did create is new: its DROP runs.
	mustExec(t, conn, "BEGIN")
	mustExec(t, conn, "CREATE TABLE IF NOT EXISTS txm_fresh (id int)")
	mustExec(t, conn, "DROP TABLE txm_fresh")
	mustExec(t, conn, "COMMIT")
}

// A table created in another schema does not exempt the table an
// unqualified name finds on the search_path.
func TestCreatedInOtherSchemaDoesNotExempt(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	txmTable(t, "txm_ledger")
	if err := pgExec("guard", "CREATE SCHEMA IF NOT EXISTS txm_other", "GRANT ALL ON SCHEMA txm_other TO PUBLIC"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", "DROP SCHEMA IF EXISTS txm_other CASCADE") })
	for _, mode := range txmModes {
		conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
		mustExec(t, conn, "BEGIN")
		mustExec(t, conn, "CREATE TABLE txm_other.txm_ledger (id int)")
		_, err := conn.Exec(ctx, "DROP TABLE txm_ledger", mode)
		wantRefusal(t, err, "drop-table")
		mustExec(t, conn, "ROLLBACK")
		// With the other schema first on the search_path, the name finds
		// the new table: its DROP runs.
		mustExec(t, conn, "BEGIN")
		mustExec(t, conn, "SET LOCAL search_path = txm_other, public")
		mustExec(t, conn, "CREATE TABLE txm_ledger (id int)")
		if _, err := conn.Exec(ctx, "DROP TABLE txm_ledger", mode); err != nil {
			t.Fatalf("%s: DROP TABLE of the table just created in txm_other: %v", mode, err)
		}
		mustExec(t, conn, "COMMIT")
		if n := rowsOf(t, "public.txm_ledger", ""); n != txmRows {
			t.Fatalf("%s: public.txm_ledger has %d rows, want %d", mode, n, txmRows)
		}
	}
}

// The memory follows savepoints: after ROLLBACK TO SAVEPOINT the
// transaction no longer holds the ACCESS EXCLUSIVE lock taken after the
// savepoint, and a small UPDATE of the table runs (nested savepoints,
// RELEASE, a driver's savepoint in the extended protocol). A lock taken
// before the savepoint, or kept by RELEASE, still refuses it.
func TestSavepointRollbackForgetsLock(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	txmTable(t, "txm_big")
	const update = "UPDATE txm_big SET note = 'done' WHERE id < 1000"
	for _, mode := range txmModes {
		for i, steps := range [][]string{
			{"SAVEPOINT s", "ALTER TABLE txm_big ADD COLUMN extra int", "ROLLBACK TO SAVEPOINT s"},
			{"SAVEPOINT a", "SAVEPOINT b", "LOCK TABLE txm_big IN ACCESS EXCLUSIVE MODE", "RELEASE SAVEPOINT b", "ROLLBACK TO a"},
			// A name set twice: RELEASE ends the later one, ROLLBACK TO goes to the first.
			{"CREATE TEMP TABLE txm_scratch (id int) ON COMMIT DROP", "SAVEPOINT s", "ALTER TABLE txm_big ADD COLUMN extra int", "SAVEPOINT s", "RELEASE s", "ROLLBACK TO s"},
		} {
			if err := pgExec("guard", "UPDATE txm_big SET note = 'x'"); err != nil {
				t.Fatal(err)
			}
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			mustExec(t, conn, "BEGIN")
			for _, s := range steps {
				if _, err := conn.Exec(ctx, s, mode); err != nil {
					t.Fatalf("%s case %d: %s: %v", mode, i, s, err)
				}
			}
			if _, err := conn.Exec(ctx, update, mode); err != nil {
				t.Fatalf("%s case %d: %s after the rollback: %v", mode, i, update, err)
			}
			mustExec(t, conn, "COMMIT")
			if n := rowsOf(t, "txm_big", "note = 'done'"); n != 999 {
				t.Fatalf("%s case %d: %d rows updated, want 999", mode, i, n)
			}
		}
		for _, steps := range [][]string{
			{"LOCK TABLE txm_big IN ACCESS EXCLUSIVE MODE", "SAVEPOINT s", "ROLLBACK TO SAVEPOINT s"},
			{"SAVEPOINT s", "ALTER TABLE txm_big ADD COLUMN extra int", "RELEASE SAVEPOINT s"},
		} {
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			mustExec(t, conn, "BEGIN")
			for _, s := range steps {
				mustExec(t, conn, s)
			}
			_, err := conn.Exec(ctx, update, mode)
			wantRefusal(t, err, "large-dml")
			mustExec(t, conn, "ROLLBACK")
		}
	}
}

// ACCESS EXCLUSIVE locks taken through other paths than the table's own
// name: DDL on a partitioned parent locks its partitions, DROP INDEX locks
// the index's table, an updatable view writes its base table, and MERGE
// changes rows as UPDATE does. The server says which locks the
// transaction holds.
func TestExclusiveThroughOtherPaths(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	txmTable(t, "txm_locked")
	if err := pgExec("guard",
		"DROP TABLE IF EXISTS txm_parted",
		"CREATE TABLE txm_parted (id int, note text) PARTITION BY RANGE (id)",
		"CREATE TABLE txm_parted_1 PARTITION OF txm_parted FOR VALUES FROM (0) TO (1000000)",
		fmt.Sprintf("INSERT INTO txm_parted SELECT g, 'x' FROM generate_series(1, %d) g", txmRows),
		"ANALYZE txm_parted_1",
		"CREATE INDEX txm_locked_note ON txm_locked (note)",
		"CREATE OR REPLACE VIEW txm_locked_v AS SELECT id, note FROM txm_locked",
		"GRANT ALL ON txm_parted, txm_parted_1, txm_locked_v TO PUBLIC",
	); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS txm_parted", "DROP VIEW IF EXISTS txm_locked_v") })
	for _, mode := range txmModes {
		for _, tc := range []struct{ lock, dml string }{
			{"ALTER TABLE txm_parted ADD COLUMN extra int", "UPDATE txm_parted_1 SET note = 'y' WHERE id < 100"},
			{"DROP INDEX txm_locked_note", "UPDATE txm_locked SET note = 'y' WHERE id < 100"},
			{"LOCK TABLE txm_locked IN ACCESS EXCLUSIVE MODE", "UPDATE txm_locked_v SET note = 'y' WHERE id < 100"},
			{"LOCK TABLE txm_locked IN ACCESS EXCLUSIVE MODE", "MERGE INTO txm_locked l USING (VALUES (1)) v(id) ON l.id = v.id WHEN MATCHED THEN UPDATE SET note = 'y'"},
		} {
			conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
			mustExec(t, conn, "BEGIN")
			mustExec(t, conn, tc.lock)
			_, err := conn.Exec(ctx, tc.dml, mode)
			if err == nil {
				t.Fatalf("%s: %s ran after %s", mode, tc.dml, tc.lock)
			}
			wantRefusal(t, err, "large-dml")
			mustExec(t, conn, "ROLLBACK")
		}
		// One extended-protocol batch: the UPDATE is judged before the
		// server has answered the ALTER.
		conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
		mustExec(t, conn, "BEGIN")
		b := &pgx.Batch{}
		b.Queue("ALTER TABLE txm_locked ADD COLUMN extra int")
		b.Queue("UPDATE txm_locked SET note = 'y' WHERE id = 5")
		err := conn.SendBatch(ctx, b).Close()
		if err == nil {
			t.Fatalf("%s: the batch's UPDATE ran after its ALTER", mode)
		}
		wantRefusal(t, err, "large-dml")
		mustExec(t, conn, "ROLLBACK")
	}
}

// Temporary tables are nobody else's: DROP, TRUNCATE, DROP COLUMN,
// RENAME and DML of one created earlier in the session (or named in
// pg_temp) run, even when a permanent table of the same name exists; the
// permanent one is still protected once the temporary one is gone.
func TestTemporaryTablesAreNobodyElses(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	txmTable(t, "txm_shadow")
	for _, mode := range txmModes {
		conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
		mustExec(t, conn, fmt.Sprintf("CREATE TEMP TABLE txm_shadow AS SELECT g AS id, 'x' AS note, 1 AS extra FROM generate_series(1, %d) g", txmRows))
		mustExec(t, conn, "ANALYZE txm_shadow")
		for _, s := range []string{
			"UPDATE txm_shadow SET note = 'y'",
			"DELETE FROM pg_temp.txm_shadow",
			"ALTER TABLE txm_shadow DROP COLUMN extra",
			"ALTER TABLE txm_shadow RENAME COLUMN note TO memo",
			"TRUNCATE txm_shadow",
			"DROP TABLE txm_shadow",
		} {
			if _, err := conn.Exec(ctx, s, mode); err != nil {
				t.Fatalf("%s: %s on the temporary table: %v", mode, s, err)
			}
		}
		_, err := conn.Exec(ctx, "DROP TABLE txm_shadow", mode)
		wantRefusal(t, err, "drop-table")
		if n := rowsOf(t, "public.txm_shadow", ""); n != txmRows {
			t.Fatalf("%s: public.txm_shadow has %d rows, want %d", mode, n, txmRows)
		}
	}
}

// Where the catalog says the relation does not exist, the server answers:
// DROP TABLE IF EXISTS does nothing, DELETE FROM fails with 42P01.
func TestMissingRelationLeftToServer(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	for _, mode := range txmModes {
		conn, _ := guardConn(t, addr, pgtest.SuperUser, "")
		if _, err := conn.Exec(ctx, "DROP TABLE IF EXISTS txm_missing_table", mode); err != nil {
			t.Fatalf("%s: DROP TABLE IF EXISTS of a table that does not exist: %v", mode, err)
		}
		_, err := conn.Exec(ctx, "DELETE FROM txm_no_such_table", mode)
		if err == nil || !strings.Contains(err.Error(), "42P01") {
			t.Fatalf("%s: DELETE FROM a missing table: %v, want the server's 42P01", mode, err)
		}
	}
}

// In mode warn pgguard changes nothing the client sent: a statement that
// the policy would refuse runs, with a WARNING, and the lock_timeout the
// client set stays (rule lock-timeout warns of it); the transaction's
// memory still follows the server (the small UPDATE after ROLLBACK TO
// draws no warning).
func TestWarnModeChangesNothing(t *testing.T) {
	_, addr, _ := guardProxy(t, "mode: warn\n", nil)
	ctx := context.Background()
	txmTable(t, "txm_warn")
	for _, mode := range txmModes {
		conn, notices := guardConn(t, addr, pgtest.SuperUser, "")
		mustExec(t, conn, "SET lock_timeout = 0")
		mustExec(t, conn, "BEGIN")
		for _, s := range []string{
			"CREATE TABLE IF NOT EXISTS txm_warn (id int)",
			"SAVEPOINT s",
			"ALTER TABLE txm_warn ADD COLUMN extra int",
			"SHOW lock_timeout",
			"ROLLBACK TO SAVEPOINT s",
		} {
			if s == "SHOW lock_timeout" {
				var lt string
				if err := conn.QueryRow(ctx, s, pgx.QueryExecModeSimpleProtocol).Scan(&lt); err != nil {
					t.Fatal(err)
				}
				if lt != "0" {
					t.Fatalf("%s: lock_timeout is %s after the ALTER, want the client's 0", mode, lt)
				}
				continue
			}
			if _, err := conn.Exec(ctx, s, mode); err != nil {
				t.Fatalf("%s: %s: %v", mode, s, err)
			}
		}
		*notices = (*notices)[:0]
		mustExec(t, conn, "UPDATE txm_warn SET note = 'w' WHERE id < 10")
		for _, n := range *notices {
			if strings.Contains(n.Message, "pgguard") {
				t.Fatalf("%s: the UPDATE after ROLLBACK TO drew %s %s", mode, n.Severity, n.Message)
			}
		}
		if _, err := conn.Exec(ctx, "DROP TABLE txm_warn", mode); err != nil {
			t.Fatalf("%s: DROP TABLE in mode warn: %v", mode, err)
		}
		mustExec(t, conn, "ROLLBACK")
		if n := rowsOf(t, "txm_warn", ""); n != txmRows {
			t.Fatalf("%s: txm_warn has %d rows, want %d", mode, n, txmRows)
		}
	}
}
