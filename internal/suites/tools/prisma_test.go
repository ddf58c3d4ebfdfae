package tools

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgguard/pgguard/policy"
)

// prismaDeploy runs testdata/prisma/deploy.psql, what prisma migrate deploy
// sends for one migration, on the migration directory name under
// testdata/prisma. Prisma cannot fetch its engines on these machines.
func prismaDeploy(t *testing.T, dbURL, name string) result {
	t.Helper()
	psql := lookPath(t, "psql", "apt-get install postgresql-client")
	dir := need(t, "testdata/prisma", "the Prisma statements", "testdata")
	return runTool(t, dir, baseEnv(), psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "name="+name,
		"-v", "migration="+filepath.Join(dir, name, "migration.sql"), "-f", "deploy.psql", dbURL)
}

// Prisma's migrations through pgguard: a migration.sql is one query (with
// several statements, one implicit transaction), on a connection that has
// read _prisma_migrations first.
func TestPrismaStatements(t *testing.T) {
	t.Parallel()
	db := database(t, "prisma")
	if r := prismaDeploy(t, url(db), "ok"); r.code != 0 || strings.Contains(r.out, "pgguard:") {
		t.Fatalf("ok: %s", r)
	}
	// Alone in its migration.sql, the index is built concurrently.
	if r := prismaDeploy(t, url(db), "index-alone"); r.code != 0 {
		t.Fatalf("index-alone: %s", r)
	}
	conn := direct(t, db)
	checkState(t, conn, []string{"payees", "small_v_idx", "big.nickname", "big_account_idx"}, nil)
	if _, err := conn.Exec(t.Context(), "DROP INDEX big_account_idx"); err != nil {
		t.Fatal(err)
	}
	// With other statements, it is refused with the fix in Prisma's terms,
	// nothing of the file runs, and the migration's row stays unfinished.
	r := prismaDeploy(t, url(db), "index-with-others")
	t.Logf("%s", r)
	for _, want := range []string{"pgguard: create-index:", "Fix: run CREATE INDEX CONCURRENTLY",
		"in Prisma, put it alone in a migration of its own", "Safe recipe:"} {
		if r.code == 0 || !strings.Contains(r.out, want) {
			t.Errorf("index-with-others was not refused with %q: %s", want, r)
		}
	}
	checkState(t, conn, nil, []string{"big_account_idx", "payees.note"})
	checkLedger(t, conn, `SELECT migration_name || CASE WHEN finished_at IS NULL THEN ' unfinished' ELSE '' END FROM "_prisma_migrations" ORDER BY started_at`,
		[]string{"ok", "index_alone", "index_with_others unfinished"})
	checkAudit(t, db, policy.ToolPrisma, []string{"ok", "index_alone", "index_with_others"})
	if !policy.WaitsForAdvisoryLock("SELECT pg_advisory_lock(72707369)") {
		t.Error("Prisma's advisory lock is not recognised as a wait")
	}
}
