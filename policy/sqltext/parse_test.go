package sqltext

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPgQueryOnlyThroughSqltext: every call of pg_query's parser, scanner
// or normaliser in the module's code goes through ForPgQuery (PgParse,
// PgScan, PgNormalize, PgParsePlPgSQL), so that none reads a string
// continued across a -- comment as pg_query alone does. Tests may call
// pg_query directly (lexer_diff_test.go compares the lexer with it).
func TestPgQueryOnlyThroughSqltext(t *testing.T) {
	direct := regexp.MustCompile(`pg_query\.(Parse|ParseToJSON|ParsePlPgSqlToJSON|Scan|Normalize|Fingerprint|SplitWithScanner|SplitWithParser)\(`)
	root := filepath.Join("..", "..")
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); name == "node_modules" || name == "vendor" || strings.HasPrefix(name, ".") && path != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || path == "parse.go" ||
			filepath.ToSlash(path) == "../../policy/sqltext/parse.go" {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for _, loc := range direct.FindAllIndex(src, -1) {
			line := 1 + strings.Count(string(src[:loc[0]]), "\n")
			t.Errorf("%s:%d: %s called directly: use sqltext.PgParse, PgScan, PgNormalize or PgParsePlPgSQL", path, line, src[loc[0]:loc[1]-1])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d Go files checked: the walk missed the module", checked)
	}
}
