package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, stdio{in: strings.NewReader(stdin), out: &out, err: &errOut})
	return code, out.String(), errOut.String()
}

func TestLintText(t *testing.T) {
	code, out, _ := runCmd(t, "", "lint", "testdata/migration.sql")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"testdata/migration.sql:7: rewrite create-index: CREATE INDEX on mymoolah_transactions holds a SHARE lock",
		"    rewritten: CREATE INDEX CONCURRENTLY mymoolah_transactions_fee_idx ON mymoolah_transactions (fee_amount)",
		"testdata/migration.sql:8: reject rename-column:",
		"testdata/migration.sql:10: reject parse-error:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{":3:", ":6:", ":9:"} {
		if strings.Contains(out, "migration.sql"+unwanted) {
			t.Errorf("unexpected finding at %s:\n%s", unwanted, out)
		}
	}
}

func TestLintJSONInTransaction(t *testing.T) {
	code, out, _ := runCmd(t, "", "lint", "--format", "json", "--in-transaction", "testdata/migration.sql", "--pg-version", "10")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	var rules []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var f lintFinding
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if f.File != "testdata/migration.sql" || f.Line == 0 || f.Statement == "" || f.Message == "" {
			t.Errorf("incomplete finding %+v", f)
		}
		rules = append(rules, f.Rule+"@"+f.Action)
	}
	want := "create-index@reject rename-column@reject add-column-volatile-default@reject parse-error@reject"
	if got := strings.Join(rules, " "); got != want {
		t.Errorf("findings %s, want %s", got, want)
	}
}

func TestLintStdinAndExitCodes(t *testing.T) {
	dir := t.TempDir()
	warnRules := filepath.Join(dir, "warn.yaml")
	if err := os.WriteFile(warnRules, []byte("mode: warn\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badRules := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badRules, []byte("mode: loud\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		stdin   string
		args    []string
		code    int
		wantOut string
		wantErr string
	}{
		{"clean", "SELECT 1; CREATE TABLE t (a int);", []string{"-"}, 0, "", ""},
		{"stdin rejected", "ALTER TABLE t ALTER COLUMN a SET NOT NULL", []string{"-"}, 1, "<stdin>:1: reject set-not-null", ""},
		{"warn mode", "ALTER TABLE t ALTER COLUMN a SET NOT NULL", []string{"--rules", warnRules, "-"}, 0, "warn set-not-null", ""},
		{"bad rules", "", []string{"--rules", badRules, "-"}, 2, "", "bad.yaml:1:7: mode: invalid mode"},
		{"missing file", "", []string{"nope.sql"}, 2, "", "reading nope.sql"},
		{"no files", "", nil, 2, "", "no files to check"},
		{"bad format", "", []string{"--format", "xml", "-"}, 2, "", "--format: must be text or json"},
		{"bad version", "", []string{"--pg-version", "9", "-"}, 2, "", "--pg-version: 9"},
		{"list rules", "", []string{"--list-rules"}, 0, "create-index", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tc.stdin, append([]string{"lint"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.wantOut) || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
					code, out, errOut, tc.code, tc.wantOut, tc.wantErr)
			}
		})
	}
}

// lint keeps the same memory of the open transaction as the proxy: a
// VALIDATE in the transaction that added the constraint NOT VALID is
// refused, in its own transaction it is not.
func TestLintTransactionMemory(t *testing.T) {
	add := "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n"
	validate := "ALTER TABLE t VALIDATE CONSTRAINT c;\n"
	for _, c := range []struct {
		name, sql string
		code      int
	}{
		{"same transaction", "BEGIN;\n" + add + validate + "COMMIT;\n", 1},
		{"separate transactions", "BEGIN;\n" + add + "COMMIT;\nBEGIN;\n" + validate + "COMMIT;\n", 0},
		{"autocommit", add + validate, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, _ := runCmd(t, c.sql, "lint", "-")
			if code != c.code || (c.code == 1) != strings.Contains(out, "validate-in-same-transaction") {
				t.Fatalf("exit %d, want %d:\n%s", code, c.code, out)
			}
		})
	}
}

// A table created earlier in the file is new in its own transaction; after
// it (or in autocommit) it exists and is empty, as the proxy's catalog then
// reports it: size rules let it pass, the others judge it as any table.
func TestLintCreatedTables(t *testing.T) {
	create := "CREATE TABLE r (a int);\n"
	rename := "ALTER TABLE r RENAME COLUMN a TO b;\n"
	unique := "ALTER TABLE r ADD CONSTRAINT r_a_key UNIQUE (a);\n"
	for _, c := range []struct {
		name, sql, rule string // rule: the refusal expected, or ""
	}{
		{"rename in the creating transaction", "BEGIN;\n" + create + rename + "COMMIT;\n", ""},
		{"rename after it", "BEGIN;\n" + create + "COMMIT;\n" + rename, "rename-column"},
		{"rename in autocommit", create + rename, "rename-column"},
		{"size rule in autocommit", create + unique, ""},
		{"size rule after the transaction", "BEGIN;\n" + create + "COMMIT;\n" + unique, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, _ := runCmd(t, c.sql, "lint", "-")
			if want := map[bool]int{true: 1, false: 0}[c.rule != ""]; code != want || (c.rule != "" && !strings.Contains(out, "reject "+c.rule+":")) {
				t.Fatalf("exit %d, want %d (%s):\n%s", code, want, c.rule, out)
			}
		})
	}
}

// A temporary table created earlier in the file is the session's own after
// its transaction too: no rule about other sessions judges it, as the
// proxy's catalog says; a permanent table of the same name, qualified,
// still is judged.
func TestLintTemporaryTables(t *testing.T) {
	create := "CREATE TEMP TABLE scratch (a int, b int);\n"
	for _, c := range []struct {
		name, sql, rule string // rule: the refusal expected, or ""
	}{
		{"drop after its transaction", "BEGIN;\n" + create + "COMMIT;\nDROP TABLE scratch;\n", ""},
		{"truncate in autocommit", create + "TRUNCATE scratch;\n", ""},
		{"drop column in autocommit", create + "ALTER TABLE scratch DROP COLUMN b;\n", ""},
		{"the permanent table", create + "DROP TABLE public.scratch;\n", "drop-table"},
		{"no temporary table", "CREATE TABLE scratch (a int);\nTRUNCATE scratch;\n", "truncate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, _ := runCmd(t, c.sql, "lint", "-")
			if want := map[bool]int{true: 1, false: 0}[c.rule != ""]; code != want || (c.rule != "" && !strings.Contains(out, "reject "+c.rule+":")) {
				t.Fatalf("exit %d, want %d (%s):\n%s", code, want, c.rule, out)
			}
		})
	}
}
