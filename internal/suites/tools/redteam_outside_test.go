package tools

import (
	"context"
	"strings"
	"testing"
)

// Django's and Rails' way to run a statement outside a transaction was
// said with their index-building idioms whatever the statement: a
// Django user refused an enum column's type change read "Fix: ... run
// ALTER TYPE mood ADD VALUE ... outside a transaction: in Django, use a
// migration of its own with atomic = False and AddIndexConcurrently" (as
// docs/tools/django.md shows Django printing), and VACUUM FULL's, REINDEX's
// and DETACH PARTITION's fixes likewise; a Rails user read "with
// disable_ddl_transaction! and algorithm: :concurrently". Neither
// AddIndexConcurrently nor algorithm: :concurrently runs an ALTER TYPE, a
// VACUUM or a REINDEX: the fix must say how to run that statement
// (migrations.RunSQL, execute), and keep the index idioms for index builds.
func TestRedteamOutsideFixFitsTheStatement(t *testing.T) {
	t.Parallel()
	needPG(t)
	db := database(t, "redteam_outside")
	conn := direct(t, db)
	if _, err := conn.Exec(context.Background(), "CREATE TYPE mood AS ENUM ('calm', 'busy'); ALTER TABLE big ADD COLUMN mood mood"); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ rule, sql string }{
		{"alter-column-type", "ALTER TABLE big ALTER COLUMN mood TYPE text"},
		{"vacuum-full", "VACUUM FULL big"},
		{"reindex", "SELECT 1; REINDEX INDEX big_pkey"},
		{"concurrently-in-transaction", "SELECT 1; REINDEX INDEX CONCURRENTLY big_pkey"},
	}
	for _, tl := range []struct{ app, indexIdiom, want string }{
		{"django", "AddIndexConcurrently", "RunSQL"},
		{"rails", "algorithm: :concurrently", "execute"},
	} {
		for _, c := range cases {
			pe := refusal(t, db, tl.app, c.sql)
			if !strings.HasPrefix(pe.Message, "pgguard: "+c.rule+":") {
				t.Errorf("%s as %s: refused by another rule: %s", c.sql, tl.app, pe.Message)
				continue
			}
			_, fix, _ := strings.Cut(pe.Message, " Fix: ")
			if strings.Contains(fix, tl.indexIdiom) || !strings.Contains(fix, tl.want) {
				t.Errorf("%s as %s: the fix says %q for a statement that builds no index, not %q:\n  Fix: %s", c.sql, tl.app, tl.indexIdiom, tl.want, fix)
			}
		}
		// An index build keeps the tool's own operation.
		pe := refusal(t, db, tl.app, "SELECT 1; CREATE INDEX big_note_idx ON big (note)")
		if !strings.Contains(pe.Message, tl.indexIdiom) {
			t.Errorf("CREATE INDEX as %s: the fix lost %q: %s", tl.app, tl.indexIdiom, pe.Message)
		}
	}
}
