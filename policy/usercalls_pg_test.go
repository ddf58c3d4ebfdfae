package policy

import (
	"context"
	"strings"
	"testing"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestBuiltinNamesMatchServer: the names CallsUserFunction takes for
// built in are the server's own, every pg_catalog function and keyword
// of it (a newer server's new ones are missing here: a call of one then
// counts as user code, which costs a question, never a miss).
func TestBuiltinNamesMatchServer(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the PostgreSQL comparison in -short mode")
	}
	s := pgtest.Must(t, pgtest.Options{})
	conn := connect(t, s, "postgres")
	ctx := context.Background()
	for _, c := range []struct {
		query string
		set   map[string]struct{}
	}{
		{"SELECT DISTINCT proname::text FROM pg_catalog.pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace", builtinFunctions},
		{"SELECT word FROM pg_catalog.pg_get_keywords()", keywords},
		{"SELECT word FROM pg_catalog.pg_get_keywords() WHERE catcode IN ('U', 'T') AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p" +
			" WHERE p.proname = word AND p.pronamespace = 'pg_catalog'::regnamespace)", funcKeywords},
		{"SELECT DISTINCT oprname::text FROM pg_catalog.pg_operator WHERE oprnamespace = 'pg_catalog'::regnamespace", builtinOperators},
	} {
		rows, err := conn.Query(ctx, c.query)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var w string
			if err := rows.Scan(&w); err != nil {
				t.Fatal(err)
			}
			n++
			if _, ok := c.set[w]; !ok {
				t.Errorf("%s: %q is missing (regenerate builtins_pg15.go)", c.query, w)
			}
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		if s.Version/10000 == 15 && n != len(c.set) {
			t.Errorf("%s: the server has %d, builtins_pg15.go %d", c.query, n, len(c.set))
		}
	}
}

// TestCallsUserFunctionMatchesServer plays statements on PostgreSQL with
// track_functions = all and asks pg_stat_xact_user_functions whether
// they called a user function (all of them PL/pgSQL, which is never
// inlined): CallsUserFunction must say so for each that did, and must not
// for the application's everyday shapes that did not (column lists,
// ON CONFLICT, casts with a type modifier, COALESCE, IN lists, window
// functions), which would make their transactions ask the server.
func TestCallsUserFunctionMatchesServer(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the PostgreSQL comparison in -short mode")
	}
	s := pgtest.Must(t, pgtest.Options{})
	if err := s.Exec("CREATE DATABASE usercalls"); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	conn := connect(t, s, "usercalls")
	ctx := context.Background()
	for _, q := range []string{
		"DROP SCHEMA IF EXISTS app CASCADE", "DROP TABLE IF EXISTS uc_t, \"Uc T\"", "DROP FUNCTION IF EXISTS uc_f(int), \"Uc F\"(), uc_p(int), lower(int), refresh(), validate(int), data()",
		"CREATE SCHEMA app",
		"CREATE TABLE uc_t (id int PRIMARY KEY, v text, n numeric(10, 2))",
		"CREATE TABLE \"Uc T\" (id int)",
		"CREATE FUNCTION uc_f(int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN $1; END $$",
		"CREATE FUNCTION \"Uc F\"() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$",
		"CREATE FUNCTION app.g() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$",
		// Unreserved keywords name functions unquoted.
		"CREATE FUNCTION refresh() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$",
		"CREATE FUNCTION validate(int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN $1; END $$",
		"CREATE FUNCTION data() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$",
		"CREATE PROCEDURE uc_p(int) LANGUAGE plpgsql AS $$ BEGIN PERFORM 1; END $$",
		"INSERT INTO uc_t VALUES (1, 'a', 1)",
		"SET track_functions = 'all'",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, q := range []string{
		// Calls.
		"SELECT uc_f(1)",
		"SELECT UC_F (1)",
		"SELECT \"Uc F\"()",
		"SELECT app.g()",
		"SELECT * FROM uc_f(2)",
		"SELECT v FROM uc_t WHERE id = uc_f(1)",
		"UPDATE uc_t SET v = v WHERE id = uc_f(1)",
		"INSERT INTO uc_t (id, v) VALUES (uc_f(5), 'b') ON CONFLICT (id) DO NOTHING",
		"CALL uc_p(1)",
		"SELECT coalesce(uc_f(1), 0)",
		"SELECT /* c */ uc_f /* c */ (1)",
		"SELECT refresh()",
		"SELECT * FROM refresh()",
		"SELECT v FROM uc_t WHERE id = validate(1)",
		"SELECT 1 WHERE data() = 1 AND validate(2) > 0",
		"SELECT (refresh()), coalesce(Data(), 0)",
		"SELECT id, validate(id) FROM uc_t",
		"INSERT INTO uc_t (id, v) VALUES (validate(7), 'b') ON CONFLICT (id) DO NOTHING",
		// No call.
		"SELECT count(*) FROM uc_t",
		"SELECT coalesce(v, 'x'), nullif(v, ''), greatest(id, 2) FROM uc_t WHERE id IN (1, 2) AND EXISTS (SELECT 1)",
		"INSERT INTO uc_t (id, v) VALUES (2, 'b') ON CONFLICT (id) DO UPDATE SET v = excluded.v",
		"INSERT INTO public.uc_t (id, v) VALUES (3, 'c')",
		"INSERT INTO \"Uc T\" (id) VALUES (1)",
		"SELECT CAST(n AS numeric(12, 2)), n::varchar(20), now(), pg_catalog.lower(v) FROM uc_t",
		"SELECT x.a FROM (SELECT 1) AS x (a)",
		"SELECT row_number() OVER (PARTITION BY v ORDER BY id), sum(id) FILTER (WHERE id > 0) FROM uc_t GROUP BY id, v",
		"SELECT v FROM uc_t WHERE id = ANY (ARRAY[1, 2]) AND v LIKE 'a(%'",
		"UPDATE uc_t SET (v, n) = ('x', 2) WHERE id = 1",
		"WITH w (id) AS (SELECT 1) SELECT * FROM uc_t JOIN w USING (id)",
		"SELECT 'uc_f(1)', $$uc_f(1)$$",
		"SELECT sum(id) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM uc_t",
		"SELECT count(*) FILTER (WHERE id > 0) FROM uc_t GROUP BY GROUPING SETS ((v), ())",
		"EXPLAIN (COSTS OFF) SELECT 1",
		"SELECT 1::double precision, CAST('1' AS bit varying(4)), CAST('a' AS character varying(3)), interval '1' second",
		"CREATE TEMP TABLE uc_k (a int, b int, PRIMARY KEY (a), UNIQUE (b) INCLUDE (a)) ON COMMIT DROP",
		"SELECT id FROM uc_t ORDER BY id NULLS FIRST LIMIT 1",
	} {
		t.Run(q, func(t *testing.T) {
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			count := func() (n int) {
				if err := tx.QueryRow(ctx, "SELECT coalesce(sum(calls), 0) FROM pg_catalog.pg_stat_xact_user_functions").Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			before := count()
			if _, err := tx.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			calls := count() - before
			if got := CallsUserFunction(q); got != (calls > 0) {
				t.Errorf("CallsUserFunction(%q) = %v; the server called user functions %d times", q, got, calls)
			}
		})
	}
}
