package sqltext

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestNewKeywordsAreTheServersDifference pins newKeywords to what it
// stands for: the keywords of pg_query's grammar (its vendored kwlist.h)
// that the server's (pg_get_keywords(), PostgreSQL 15 here) does not
// have, no more and no fewer; and ServerRejectsToo to the server: each
// generated statement it calls a syntax error on the server is refused by
// the server's parser (42601), and each statement that spells a new
// keyword and fails in pg_query is not called one.
func TestNewKeywordsAreTheServersDifference(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/pganalyze/pg_query_go/v6").Output()
	if err != nil {
		t.Fatalf("locating pg_query_go's sources: %v", err)
	}
	kwlist, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "parser", "include", "postgres", "parser", "kwlist.h"))
	if err != nil {
		t.Fatal(err)
	}
	ours := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^PG_KEYWORD\("([a-z_]+)"`).FindAllStringSubmatch(string(kwlist), -1) {
		ours[m[1]] = true
	}
	if len(ours) < 400 {
		t.Fatalf("read %d keywords from kwlist.h", len(ours))
	}
	s := pgtest.Must(t, pgtest.Options{})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DSN(pgtest.SuperUser, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var server int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int / 10000").Scan(&server); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "SELECT word FROM pg_get_keywords()")
	if err != nil {
		t.Fatal(err)
	}
	theirs := map[string]bool{}
	for rows.Next() {
		var w string
		if err := rows.Scan(&w); err != nil {
			t.Fatal(err)
		}
		theirs[w] = true
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	for w := range theirs {
		if !ours[w] {
			t.Errorf("%q is a keyword of PostgreSQL %d but not of pg_query's grammar", w, server)
		}
	}
	if server == 15 {
		for w := range ours {
			if !theirs[w] && !newKeywords[w] {
				t.Errorf("%q is a keyword of pg_query's grammar, not of PostgreSQL 15, and missing from newKeywords", w)
			}
		}
		for w := range newKeywords {
			if theirs[w] || !ours[w] {
				t.Errorf("%q in newKeywords: PostgreSQL 15 keyword %v, pg_query keyword %v", w, theirs[w], ours[w])
			}
		}
	}
	// The server's parser is the oracle for ServerRejectsToo: a statement
	// it calls a syntax error the server must refuse with 42601 (in a
	// transaction block that is rolled back, so nothing stays).
	var words []string
	for w := range newKeywords {
		words = append(words, w)
	}
	stmts := []string{
		"ALTER TABLE t ADD COLUMN x int DEFAULT", "CREATE INDEX ON t (", "DROP TABLE t,",
		"UPDATE t SET a = WHERE id = 1", "SELECT FROM WHERE", "CREATE TABLE (a int)", "ALTER TABLE t RENAME",
		"GRANT SELECT ON t", "VACUUM (", "CREATE TABLE t (a int,)", "SELECT 1 +",
	}
	for _, w := range words {
		stmts = append(stmts,
			"CREATE TABLE "+w+" (id int)", "CREATE FUNCTION "+w+"() RETURNS int LANGUAGE sql AS 'SELECT 1'",
			"SELECT 1 "+w, "CREATE TABLE t ("+w+" int)", "ALTER TABLE t RENAME TO "+w, "CREATE TYPE "+w+" AS (a int)",
			"SELECT "+w+"(1)", "CREATE INDEX "+w+" ON t (a)")
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (id int, a int)"); err != nil {
		t.Fatal(err)
	}
	called := 0
	for _, stmt := range stmts {
		_, perr := PgParse(stmt)
		if perr == nil {
			continue
		}
		if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		_, serr := conn.Exec(ctx, stmt)
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		var pe *pgconn.PgError
		syntax := errors.As(serr, &pe) && pe.Code == "42601"
		if ServerRejectsToo(perr, stmt, server) {
			called++
			if !syntax {
				t.Errorf("%s: ServerRejectsToo, but PostgreSQL %d answers %v", stmt, server, serr)
			}
		}
	}
	if called < 10 {
		t.Errorf("ServerRejectsToo held for %d statements: the check tests nothing", called)
	}
	// pgguard's own limits are not the server's syntax errors.
	if ServerRejectsToo(errors.New("syntax error at or near \"x\""), "x", server) {
		t.Error("an error that is not pg_query's counts as a syntax error")
	}
	var kinds int
	if res, err := PgScan("SELECT system_user"); err == nil {
		for _, tok := range res.Tokens {
			if tok.KeywordKind != pg_query.KeywordKind_NO_KEYWORD {
				kinds++
			}
		}
	}
	if kinds != 2 {
		t.Errorf("PgScan found %d keywords in SELECT system_user", kinds)
	}
}
