package proxy

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// numberList writes first, first+1, ..., first+n-1 separated by commas,
// each through f.
func numberList(n int, f func(i int) string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteString(",")
		}
		b.WriteString(f(i))
	}
	return b.String()
}

// An IN list on the primary key is a key only for as many rows as it
// lists: Rails' where(id: ids), Django's filter(id__in=ids) and knex's
// whereIn send 100,001 ids as literals, and the statement changes 100,001
// rows.
func TestRedteamLargeDMLLongInList(t *testing.T) {
	ids := numberList(100001, strconv.Itoa)
	redteamLargeDML(t, []string{
		"CREATE TABLE rt_inl (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"INSERT INTO rt_inl SELECT g, 0 FROM generate_series(1, 150000) g",
		"SELECT pg_stat_force_next_flush()",
		"ANALYZE rt_inl",
	}, []string{
		"UPDATE rt_inl SET v = 1 WHERE id IN (" + ids + ")",
		"DELETE FROM rt_inl WHERE id IN (" + ids + ")",
	}, "SELECT count(*) FILTER (WHERE v <> 0) + (150000 - count(*)) FROM rt_inl",
		"UPDATE rt_inl SET v = 0 WHERE v <> 0; INSERT INTO rt_inl SELECT g, 0 FROM generate_series(1, 150000) g ON CONFLICT DO NOTHING")
}

// A unique key over two columns, each bound by an IN list of 400 values:
// 160,000 keys, every one of them a row.
func TestRedteamLargeDMLInListProduct(t *testing.T) {
	list := numberList(400, strconv.Itoa)
	redteamLargeDML(t, []string{
		"CREATE TABLE rt_inp (a int, b int, v int NOT NULL DEFAULT 0, UNIQUE (a, b)) WITH (autovacuum_enabled = off)",
		"INSERT INTO rt_inp SELECT a, b, 0 FROM generate_series(1, 400) a, generate_series(1, 400) b",
		"SELECT pg_stat_force_next_flush()",
		"ANALYZE rt_inp",
	}, []string{
		"UPDATE rt_inp SET v = 1 WHERE a IN (" + list + ") AND b IN (" + list + ")",
		"DELETE FROM rt_inp WHERE a IN (" + list + ") AND b IN (" + list + ") AND v = 0",
	}, "SELECT count(*) FILTER (WHERE v <> 0) + (160000 - count(*)) FROM rt_inp",
		"UPDATE rt_inp SET v = 0 WHERE v <> 0; INSERT INTO rt_inp SELECT a, b, 0 FROM generate_series(1, 400) a, generate_series(1, 400) b ON CONFLICT DO NOTHING")
}

// A bulk upsert of VALUES (Rails' upsert_all, Sequelize's bulkCreate with
// updateOnDuplicate, Django's bulk_create(update_conflicts=True)) of
// 100,001 rows that all exist updates 100,001 rows.
func TestRedteamLargeDMLUpsertValues(t *testing.T) {
	redteamLargeDML(t, []string{
		"CREATE TABLE rt_upv (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"INSERT INTO rt_upv SELECT g, 0 FROM generate_series(1, 150000) g",
		"SELECT pg_stat_force_next_flush()",
		"ANALYZE rt_upv",
	}, []string{
		"INSERT INTO rt_upv (id) VALUES " + numberList(100001, func(i int) string { return "(" + strconv.Itoa(i) + ")" }) + " ON CONFLICT (id) DO UPDATE SET v = 1",
	}, "SELECT count(*) FROM rt_upv WHERE v <> 0", "UPDATE rt_upv SET v = 0 WHERE v <> 0")
}

// A unique index built with another collation than the column's: the
// column's = is case-insensitive (a nondeterministic ICU collation), the
// index's is bytewise, so the index holds the 150,000 case variants of
// one name, and WHERE name = '...' matches all of them.
func TestRedteamLargeDMLIndexCollationKey(t *testing.T) {
	redteamLargeDML(t, []string{
		"CREATE COLLATION IF NOT EXISTS rt_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
		"CREATE TABLE rt_coll (name text COLLATE rt_ci NOT NULL, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		`CREATE UNIQUE INDEX rt_coll_name ON rt_coll (name COLLATE "C")`,
		"INSERT INTO rt_coll SELECT (SELECT string_agg(CASE WHEN (g >> i) & 1 = 1 THEN 'A' ELSE 'a' END, '' ORDER BY i) FROM generate_series(0, 17) i), 0 FROM generate_series(0, 149999) g",
		"SELECT pg_stat_force_next_flush()",
		"ANALYZE rt_coll",
	}, []string{
		"UPDATE rt_coll SET v = 1 WHERE name = 'aaaaaaaaaaaaaaaaaa'",
		"DELETE FROM rt_coll WHERE name = 'aaaaaaaaaaaaaaaaaa'",
	}, "SELECT count(*) FILTER (WHERE v <> 0) + (150000 - count(*)) FROM rt_coll",
		"UPDATE rt_coll SET v = 0 WHERE v <> 0")
}

// A numeric unique key compared with a float8: PostgreSQL casts the
// column to float8 (there is no numeric = float8), which is not one to
// one; 150,000 distinct numerics are the same double.
func TestRedteamLargeDMLLossyCastKey(t *testing.T) {
	redteamLargeDML(t, []string{
		"CREATE TABLE rt_lossy (x numeric PRIMARY KEY, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"INSERT INTO rt_lossy SELECT 0.1 + g * 1e-25, 0 FROM generate_series(1, 150000) g",
		"SELECT pg_stat_force_next_flush()",
		"ANALYZE rt_lossy",
	}, []string{
		"UPDATE rt_lossy SET v = 1 WHERE x = 0.1::float8",
		"UPDATE rt_lossy SET v = 1 WHERE x = '0.1'::double precision",
	}, "SELECT count(*) FROM rt_lossy WHERE v <> 0", "UPDATE rt_lossy SET v = 0 WHERE v <> 0")
}

// The commonest backfill: a column added by the migration (no statistics
// yet: ADD COLUMN neither rewrites nor analyzes), then filled WHERE it IS
// NULL, or picked by its default. The planner's default selectivity
// (0.5%) makes 150,000 rows look like 750.
func TestRedteamLargeDMLNewColumnNoStatistics(t *testing.T) {
	redteamLargeDML(t, []string{
		"CREATE TABLE rt_newcol (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"INSERT INTO rt_newcol SELECT g, 0 FROM generate_series(1, 150000) g",
		"SELECT pg_stat_force_next_flush()",
		"ANALYZE rt_newcol",
		"ALTER TABLE rt_newcol ADD COLUMN flag text",
		"ALTER TABLE rt_newcol ADD COLUMN state text NOT NULL DEFAULT 'new'",
	}, []string{
		"UPDATE rt_newcol SET flag = 'x' WHERE flag IS NULL",
		"UPDATE rt_newcol SET v = 1 WHERE state = 'new'",
		"DELETE FROM rt_newcol WHERE state = 'new'",
	}, "SELECT count(*) FILTER (WHERE v <> 0 OR flag IS NOT NULL) + (150000 - count(*)) FROM rt_newcol",
		"UPDATE rt_newcol SET v = 0, flag = NULL WHERE v <> 0 OR flag IS NOT NULL; INSERT INTO rt_newcol (id) SELECT g FROM generate_series(1, 150000) g ON CONFLICT DO NOTHING")
}

// A column whose statistics target is 0 (ALTER TABLE ... SET STATISTICS
// 0): ANALYZE leaves it without statistics, and the planner guesses.
func TestRedteamLargeDMLStatisticsZero(t *testing.T) {
	redteamLargeDML(t, []string{
		"CREATE TABLE rt_stat0 (id bigint PRIMARY KEY, status text NOT NULL) WITH (autovacuum_enabled = off)",
		"ALTER TABLE rt_stat0 ALTER COLUMN status SET STATISTICS 0",
		"INSERT INTO rt_stat0 SELECT g, 'done' FROM generate_series(1, 150000) g",
		"SELECT pg_stat_force_next_flush()",
		"ANALYZE rt_stat0",
	}, []string{
		"UPDATE rt_stat0 SET status = 'archived' WHERE status = 'done'",
	}, "SELECT count(*) FROM rt_stat0 WHERE status <> 'done'", "UPDATE rt_stat0 SET status = 'done'")
}

// A foreign table (postgres_fdw) over a table of 150,000 rows: its
// statistics are none (never analyzed, no pages), so the planner's figure
// is its default, not the rows the UPDATE changes on the remote server.
func TestRedteamLargeDMLForeignTable(t *testing.T) {
	largeDMLSetup(t)
	redteamLargeDML(t, []string{
		"CREATE TABLE rt_remote (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"INSERT INTO rt_remote SELECT g, 0 FROM generate_series(1, 150000) g",
		"SELECT pg_stat_force_next_flush()",
		"ANALYZE rt_remote",
		"CREATE EXTENSION IF NOT EXISTS postgres_fdw",
		fmt.Sprintf("CREATE SERVER rt_loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '%d', dbname 'guard')", pg.Port),
		"CREATE USER MAPPING FOR CURRENT_USER SERVER rt_loop OPTIONS (user 'postgres')",
		"CREATE FOREIGN TABLE rt_foreign (id bigint, v int) SERVER rt_loop OPTIONS (table_name 'rt_remote')",
	}, []string{
		"UPDATE rt_foreign SET v = 1",
		"UPDATE rt_foreign SET v = 1 WHERE v = 0",
		"DELETE FROM rt_foreign WHERE v = 0",
	}, "SELECT count(*) FILTER (WHERE v <> 0) + (150000 - count(*)) FROM rt_remote",
		"UPDATE rt_remote SET v = 0 WHERE v <> 0; INSERT INTO rt_remote SELECT g, 0 FROM generate_series(1, 150000) g ON CONFLICT DO NOTHING")
}

// A table created in the transaction, then dropped, renamed or moved: its
// name is free, and a view of the same name over a big table is nothing
// the transaction created. UPDATE through it changes 150,000 rows.
func TestRedteamLargeDMLCreatedNameReused(t *testing.T) {

	redteamLargeDML(t, []string{
		"CREATE TABLE rt_reuse_big (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0) WITH (autovacuum_enabled = off)",
		"INSERT INTO rt_reuse_big SELECT g, 0 FROM generate_series(1, 150000) g",
		"SELECT pg_stat_force_next_flush()",
		"ANALYZE rt_reuse_big",
		"CREATE SCHEMA IF NOT EXISTS rt_reuse_elsewhere",
	}, []string{
		"BEGIN; CREATE TABLE rt_reuse (id int); DROP TABLE rt_reuse; CREATE VIEW rt_reuse AS SELECT * FROM rt_reuse_big; UPDATE rt_reuse SET v = 1; COMMIT",
		"BEGIN; CREATE TABLE rt_reuse (id int); ALTER TABLE rt_reuse RENAME TO rt_reuse_old; CREATE VIEW rt_reuse AS SELECT * FROM rt_reuse_big; UPDATE rt_reuse SET v = 1; COMMIT",
		"BEGIN; CREATE TABLE rt_reuse (id int); ALTER TABLE rt_reuse SET SCHEMA rt_reuse_elsewhere; CREATE VIEW rt_reuse AS SELECT * FROM rt_reuse_big; UPDATE rt_reuse SET v = 1; COMMIT",
	}, "SELECT count(*) FROM rt_reuse_big WHERE v <> 0",
		"UPDATE rt_reuse_big SET v = 0 WHERE v <> 0; DROP VIEW IF EXISTS rt_reuse; DROP TABLE IF EXISTS rt_reuse_old, rt_reuse_elsewhere.rt_reuse")
}

// A backfill that picks its rows by an expression of columns (JSON
// fields, lower(), coalesce(), a cast): the planner has no statistics for
// the expression and guesses 0.5% of the rows for =, so 150,000 rows look
// like 750.
func TestRedteamLargeDMLExpressionNoStatistics(t *testing.T) {
	redteamLargeDML(t, []string{
		"CREATE TABLE rt_expr (id bigint PRIMARY KEY, data jsonb NOT NULL, email text NOT NULL, v int) WITH (autovacuum_enabled = off)",
		`INSERT INTO rt_expr SELECT g, '{"kind": "legacy"}', 'USER@EXAMPLE.COM', 0 FROM generate_series(1, 150000) g`,
		"SELECT pg_stat_force_next_flush()",
		"ANALYZE rt_expr",
	}, []string{
		"UPDATE rt_expr SET v = 1 WHERE data->>'kind' = 'legacy'",
		"UPDATE rt_expr SET v = 1 WHERE lower(email) = 'user@example.com'",
		"DELETE FROM rt_expr WHERE coalesce(v, 0) = 0",
		"UPDATE rt_expr SET v = 1 WHERE (data->>'since') IS NULL",
		"UPDATE rt_expr SET v = 1 WHERE v::text = '0'",
	}, "SELECT count(*) FILTER (WHERE v <> 0) + (150000 - count(*)) FROM rt_expr",
		`UPDATE rt_expr SET v = 0 WHERE v <> 0; INSERT INTO rt_expr SELECT g, '{"kind": "legacy"}', 'USER@EXAMPLE.COM', 0 FROM generate_series(1, 150000) g ON CONFLICT DO NOTHING`)
}
