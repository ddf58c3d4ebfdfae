package tools

import (
	"os"
	"strings"
	"testing"

	"github.com/pgguard/pgguard/policy"
)

// Prisma cannot fetch its engines on these machines, so psql sends what
// prisma migrate deploy sends: its lock and ledger statements, then each
// migration.sql as one query (a simple Query with several statements is
// one implicit transaction).
func TestPrismaStatements(t *testing.T) {
	t.Parallel()
	needPG(t)
	psql := lookPath(t, "psql", "apt-get install postgresql-client")
	db := database(t, "prisma")
	run := func(file string) result {
		sql, err := os.ReadFile("testdata/prisma/" + file)
		if err != nil {
			t.Fatal(err)
		}
		// -c sends the whole file as one Query, as Prisma does.
		return runTool(t, ".", baseEnv(), psql, "-X", "-v", "ON_ERROR_STOP=1", "-d", url(db), "-c", string(sql))
	}
	for _, file := range []string{"ledger.sql", "ok/migration.sql"} {
		if r := run(file); r.code != 0 || strings.Contains(r.out, "pgguard:") {
			t.Fatalf("%s: %s", file, r)
		}
	}
	// Alone in its migration.sql, the index is built concurrently.
	if r := run("index-alone/migration.sql"); r.code != 0 {
		t.Fatalf("index-alone: %s", r)
	}
	conn := direct(t, db)
	checkState(t, conn, []string{"payees", "small_v_idx", "big.nickname", "big_account_idx"}, nil)
	if _, err := conn.Exec(t.Context(), "DROP INDEX big_account_idx"); err != nil {
		t.Fatal(err)
	}
	// With other statements, it is refused and nothing of the file runs.
	r := run("index-with-others/migration.sql")
	if r.code == 0 || !strings.Contains(r.out, "pgguard: create-index:") || !strings.Contains(r.out, "Fix: run CREATE INDEX CONCURRENTLY") {
		t.Fatalf("index-with-others was not refused with the fix: %s", r)
	}
	t.Logf("%s", r)
	checkState(t, conn, nil, []string{"big_account_idx", "payees.note"})
	ledger, err := os.ReadFile("testdata/prisma/ledger.sql")
	if err != nil {
		t.Fatal(err)
	}
	var s policy.ToolSense
	for _, st := range policy.Split(string(ledger)) {
		s.Observe(st.Text)
	}
	if s.Tool() != policy.ToolPrisma {
		t.Errorf("ToolSense says %q for Prisma's ledger statements", s.Tool())
	}
	if !policy.WaitsForAdvisoryLock("SELECT pg_advisory_lock(72707369)") {
		t.Error("Prisma's advisory lock is not recognised as a wait")
	}
}
