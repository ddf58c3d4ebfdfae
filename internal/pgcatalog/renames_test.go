package pgcatalog

import (
	"context"
	"testing"

	"github.com/pgguard/pgguard/policy"
)

// TestBorrowedRenamesByOID: a rename seen through pgguard is followed back
// only for the relation that was renamed (by its OID): accounts renamed to
// accounts_old is found in production's sizes as accounts, and a chain of
// renames as well; a rename rolled back, after which another table takes
// the new name, does not lend that table the renamed one's size.
func TestBorrowedRenamesByOID(t *testing.T) {
	prod, uat := redteamDatabases(t)
	for _, q := range []*ConnQuerier{prod, uat} {
		mustExec(t, q, "CREATE TABLE accounts (id int, v int)")
		mustExec(t, q, "CREATE TABLE ledger (id int, v int)")
	}
	mustExec(t, prod, "INSERT INTO accounts SELECT g, g FROM generate_series(1, 3000) g")
	mustExec(t, prod, "INSERT INTO ledger SELECT g, g FROM generate_series(1, 2000) g")
	mustExec(t, uat, "INSERT INTO accounts SELECT g, g FROM generate_series(1, 10) g")
	analyze(t, prod)
	analyze(t, uat)
	b := borrowFrom(t, prod, uat)
	b.Renames = NewRenames()
	ctx := context.Background()
	rows := func(table string) int64 {
		t.Helper()
		size, ok := b.TableSize(ctx, table)
		if !ok {
			t.Fatalf("%s: no size", table)
		}
		return size.Rows
	}
	rename := func(from, to string) {
		b.WillRename(ctx, from, policy.Table{Name: to})
		mustExec(t, uat, "ALTER TABLE "+from+" RENAME TO "+to)
	}
	rename("accounts", "accounts_old")
	if got := rows("accounts_old"); got != 3000 {
		t.Errorf("accounts_old (accounts renamed): %d rows, want production's 3,000", got)
	}
	rename("accounts_old", "accounts_older")
	if got := rows("accounts_older"); got != 3000 {
		t.Errorf("accounts_older (renamed twice): %d rows, want production's 3,000", got)
	}
	// Rolled back: ledger keeps its name; a new, empty ledger_new is not
	// production's ledger.
	b.WillRename(ctx, "ledger", policy.Table{Name: "ledger_new"})
	mustExec(t, uat, "BEGIN; ALTER TABLE ledger RENAME TO ledger_new; ROLLBACK")
	mustExec(t, uat, "CREATE TABLE ledger_new (id int, v int)")
	if got := rows("ledger_new"); got != 0 {
		t.Errorf("ledger_new, created after the rename was rolled back: %d rows, want its own 0", got)
	}
	if got := rows("ledger"); got != 2000 {
		t.Errorf("ledger: %d rows, want production's 2,000", got)
	}
}
