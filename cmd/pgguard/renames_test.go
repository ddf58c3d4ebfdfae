package main

import (
	"strings"
	"testing"

	"github.com/pgguard/pgguard/policy"
)

// TestRenamedInEarlierMigration: an earlier migration, committed on its
// own, renamed a table through pgguard on uat (accounts to accounts_old)
// and on uat-file (ledger to ledger_old); production has not run it yet.
// A later migration's statement on the new name is judged with
// production's size of the table by its old name, as production's proxy
// judges the same statement under the name production still has: refused,
// where uat's own 10 rows would let it through. lint --sizes agrees when
// the rename is in an earlier file of the same run: settings (5 rows in
// production) renamed in one file and updated in the next is allowed, as
// production allows it, where a name the export does not know counts as
// large.
func TestRenamedInEarlierMigration(t *testing.T) {
	r := startNameRig(t, nil)
	r.sessions["uat"].must(t, "ALTER TABLE accounts RENAME TO accounts_old")
	r.sessions["uat-file"].must(t, "ALTER TABLE ledger RENAME TO ledger_old")
	for _, c := range []struct{ target, sql, prodSQL, rule string }{
		{"uat", "UPDATE accounts_old SET note = 'x'", "UPDATE accounts SET note = 'x'", "large-dml"},
		{"uat", "ALTER TABLE accounts_old ALTER COLUMN amount TYPE bigint", "ALTER TABLE accounts ALTER COLUMN amount TYPE bigint", "alter-column-type"},
		{"uat-file", "UPDATE ledger_old SET amount = 0", "UPDATE ledger SET amount = 0", "large-dml"},
	} {
		prod := r.sessions["production"].verdict(t, agreeContext{inTransaction: true}, c.prodSQL)
		got := r.sessions[c.target].verdict(t, agreeContext{inTransaction: true}, c.sql)
		t.Logf("%s on %s: %s; production, %s: %s", c.sql, c.target, got.key(), c.prodSQL, prod.key())
		if !strings.Contains(prod.key(), c.rule+"@") {
			t.Fatalf("production: %s, want %s refusing", prod.key(), c.rule)
		}
		if got.key() != prod.key() {
			t.Errorf("%s on %s decides %s, production %s", c.sql, c.target, got.key(), prod.key())
		}
	}

	// lint --sizes over two files: the rename in the first.
	lint := func(files ...string) []lintFinding {
		o := &lintOptions{inTransaction: true, format: "json", sizes: r.sizes}
		var all []lintFinding
		for _, f := range files {
			found, err := lintFile(r.eng, o, "-", strings.NewReader(f))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, found...)
		}
		return all
	}
	rejected := func(fs []lintFinding) bool {
		for _, f := range fs {
			if f.Action == policy.Reject.String() {
				return true
			}
		}
		return false
	}
	update := "UPDATE settings_old SET v = 'x';\n"
	prod := r.sessions["production"].verdict(t, agreeContext{inTransaction: true}, "UPDATE settings SET v = 'x'")
	if prod.action == policy.Reject {
		t.Fatalf("production refuses the update of its 5 settings: %s", prod.key())
	}
	if !rejected(lint(update)) {
		t.Fatal("lint --sizes allows a table the export does not know: the case proves nothing")
	}
	if fs := lint("ALTER TABLE settings RENAME TO settings_old;\n", update); rejected(fs) {
		t.Errorf("lint --sizes, settings renamed in the file before: %+v; production allows", fs)
	}
}
