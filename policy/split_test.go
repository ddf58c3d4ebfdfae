package policy

import (
	"github.com/pgguard/pgguard/policy/sqltext"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"one", "SELECT 1", []string{"SELECT 1"}},
		{"trailing semicolons and space", "  SELECT 1 ;;\n ; ", []string{"SELECT 1"}},
		{"two", "BEGIN; CREATE INDEX i ON t (c);", []string{"BEGIN", "CREATE INDEX i ON t (c)"}},
		{"quotes", `SELECT ';', "a;b", E'\';' FROM t; SELECT 2`, []string{`SELECT ';', "a;b", E'\';' FROM t`, "SELECT 2"}},
		{"dollar quotes", "DO $x$ BEGIN PERFORM 1; END $x$; SELECT $1", []string{"DO $x$ BEGIN PERFORM 1; END $x$", "SELECT $1"}},
		{"comments", "-- a; b\nSELECT /* ; /* nested; */ */ 1; -- trailing; comment", []string{"-- a; b\nSELECT /* ; /* nested; */ */ 1"}},
		{"comment only", "-- nothing here;\n/* nor here */", nil},
		{"rule actions", "CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; SELECT 2); SELECT 3",
			[]string{"CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; SELECT 2)", "SELECT 3"}},
		{"begin atomic", "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END; SELECT 4",
			[]string{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END", "SELECT 4"}},
		{"unterminated quote", "SELECT 'abc; SELECT 2", []string{"SELECT 'abc; SELECT 2"}},
		{"identifier with dollar", "SELECT a$b; SELECT 2", []string{"SELECT a$b", "SELECT 2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := sqltext.Split(tc.query)
			var texts []string
			for _, s := range got {
				texts = append(texts, s.Text)
				if tc.query[s.Start:s.End] != s.Text {
					t.Errorf("positions %d:%d do not match %q", s.Start, s.End, s.Text)
				}
				code := s.Start + strings.Index(s.Text, stripLeadingComments(s.Text))
				if want := 1 + strings.Count(tc.query[:code], "\n"); s.Line != want {
					t.Errorf("line %d, want %d", s.Line, want)
				}
			}
			if strings.Join(texts, "|") != strings.Join(tc.want, "|") {
				t.Errorf("Split(%q) = %q, want %q", tc.query, texts, tc.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		sql  string
		want sqltext.Class
	}{
		{"SELECT 1", sqltext.ClassQuery}, {"  /* x */ ((select 1))", sqltext.ClassQuery}, {"insert into t values (1)", sqltext.ClassQuery},
		{"BEGIN", sqltext.ClassSession}, {"set search_path = x", sqltext.ClassSession}, {"SHOW lock_timeout", sqltext.ClassSession},
		{"UPDATE t SET a = 1", sqltext.ClassDML}, {"WITH x AS (SELECT 1) DELETE FROM t", sqltext.ClassDML},
		{"PREPARE p AS UPDATE t SET a = 1", sqltext.ClassDML}, {"PREPARE p AS SELECT 1", sqltext.ClassSession},
		{"ALTER TABLE t ADD c int", sqltext.ClassDDL}, {"DO $$ $$", sqltext.ClassDDL}, {"create index i on t (c)", sqltext.ClassDDL},
		{"-- only a comment", sqltext.ClassEmpty}, {"", sqltext.ClassEmpty}, {"123", sqltext.ClassDDL},
		{"selectx 1", sqltext.ClassDDL},
	}
	for _, tc := range tests {
		if got := sqltext.Classify(tc.sql); got != tc.want {
			t.Errorf("classify(%q) = %d, want %d", tc.sql, got, tc.want)
		}
	}
	if sqltext.IsDDL("SELECT 1") || !sqltext.IsDDL("DROP TABLE t") {
		t.Error("IsDDL misclassifies")
	}
}

// checkSplitAgainstParser compares Split with the PostgreSQL parser's own
// statement boundaries on input the parser accepts.
func checkSplitAgainstParser(t *testing.T, query string) {
	if strings.IndexByte(query, 0) >= 0 {
		return // the C parser stops at NUL; the wire protocol cannot carry one
	}
	res, err := pg_query.Parse(query)
	if err != nil {
		return
	}
	got := sqltext.Split(query)
	var want []string
	for _, rs := range res.Stmts {
		loc, n := int(rs.StmtLocation), int(rs.StmtLen)
		if n == 0 {
			n = len(query) - loc
		}
		if s := strings.TrimSpace(stripLeadingComments(query[loc : loc+n])); s != "" {
			want = append(want, s)
		}
	}
	var texts []string
	for _, s := range got {
		texts = append(texts, strings.TrimSpace(stripLeadingComments(s.Text)))
	}
	if len(texts) != len(want) {
		t.Fatalf("Split(%q) = %q, the parser finds %q", query, texts, want)
	}
	for i := range want {
		if !strings.HasPrefix(want[i], texts[i]) && !strings.HasPrefix(texts[i], want[i]) {
			t.Fatalf("Split(%q)[%d] = %q, the parser finds %q", query, i, texts[i], want[i])
		}
	}
}

func TestSplitMatchesParser(t *testing.T) {
	for _, q := range []string{
		"SELECT 1; SELECT 2",
		"CREATE TABLE t (a int); CREATE INDEX ON t (a); -- done",
		"DO $$ BEGIN RAISE NOTICE ';'; END $$; SELECT E'\\\\'",
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; SELECT 2",
	} {
		checkSplitAgainstParser(t, q)
	}
}
