package tools

import (
	"path/filepath"
	"testing"

	"github.com/pgguard/pgguard/policy"
)

// migrateBin is where `make tools-deps` installs golang-migrate's CLI
// (go install -tags postgres github.com/golang-migrate/migrate/v4/cmd/migrate).
const migrateBin = "testdata/bin/migrate"

const migrateInstall = "make tools-deps, or GOBIN=$PWD/internal/suites/tools/testdata/bin go install -tags postgres github.com/golang-migrate/migrate/v4/cmd/migrate@v4.18.3"

// golang-migrate: each file is sent as one query, outside any transaction
// unless the file says BEGIN; the version is recorded with TRUNCATE
// schema_migrations and an INSERT, dirty while the migration runs. A
// failed migration leaves the version dirty, and `migrate force` (another
// TRUNCATE) is how the user goes back.
func TestGolangMigrate(t *testing.T) {
	t.Parallel()
	needPG(t)
	bin := need(t, migrateBin, "golang-migrate", migrateInstall)
	project := need(t, "testdata/golang-migrate", "the golang-migrate project", "testdata")
	migrate := func(t *testing.T, db, sc string, args ...string) result {
		return runTool(t, filepath.Join(project, sc), baseEnv(), bin, append([]string{"-path", ".", "-database", url(db)}, args...)...)
	}
	// force goes back to the last good version, as a user does after a
	// refusal, and checks the ledger says so.
	force := func(sc, version string) func(t *testing.T, db string) {
		return func(t *testing.T, db string) {
			r := migrate(t, db, sc, "force", version)
			if r.code != 0 {
				t.Fatalf("force %s failed: %s", version, r)
			}
			checkLedger(t, direct(t, db), migrateLedger, []string{version})
		}
	}
	scs := []scenario{
		// golang-migrate inserts each version twice, dirty before the
		// migration and clean after it, and pgguard names both.
		{name: "ok", ledger: []string{"3"}, audit: []string{"1", "1", "2", "2", "3", "3"},
			present: []string{"payees", "small_v_idx", "big.nickname"},
			then: func(t *testing.T, db string) {
				// down: the version goes back with TRUNCATE too.
				r := migrate(t, db, "ok", "down", "1")
				if r.code != 0 {
					t.Fatalf("down 1 failed: %s", r)
				}
				conn := direct(t, db)
				checkLedger(t, conn, migrateLedger, []string{"2"})
				checkState(t, conn, []string{"payees", "big.nickname"}, []string{"small_v_idx"})
			}},
		// Alone in its file, the default CREATE INDEX is run CONCURRENTLY.
		{name: "index-default", ledger: []string{"2"}, present: []string{"payees", "big_account_idx"}},
		{name: "index-with-others", rule: "create-index", ledger: []string{"2 dirty"},
			present: []string{"payees"}, absent: []string{"big_account_idx", "payees.note"}, then: force("index-with-others", "1")},
		{name: "index-concurrent", ledger: []string{"2"}, present: []string{"payees", "big_account_cidx"}},
		{name: "alter-type", rule: "alter-column-type", ledger: []string{"2 dirty"}, present: []string{"payees"}, then: force("alter-type", "1")},
		{name: "volatile-default", rule: "add-column-volatile-default", ledger: []string{"2 dirty"},
			present: []string{"payees"}, absent: []string{"big.ref"}, then: force("volatile-default", "1")},
	}
	runScenarios(t, tool{
		name:         "golang-migrate",
		sense:        policy.ToolGolangMigrate,
		ledger:       migrateLedger,
		idiom:        "a migration file of its own",
		printsDetail: true,
		migrate: func(t *testing.T, db, sc string) result {
			return migrate(t, db, sc, "up")
		},
	}, scs)
}

const migrateLedger = "SELECT version || CASE WHEN dirty THEN ' dirty' ELSE '' END FROM schema_migrations"

// Two deploys' migrators started together: the second waits on
// golang-migrate's pg_advisory_lock while the first runs a migration that
// takes longer than pgguard's lock_timeout, then finds nothing left to do.
// Directly, both finish; the advisory lock blocks nobody's reads or writes.
func TestGolangMigrateTwoRunsTogether(t *testing.T) {
	t.Parallel()
	needPG(t)
	bin := need(t, migrateBin, "golang-migrate", migrateInstall)
	dir := need(t, "testdata/golang-migrate/concurrent", "the golang-migrate project", "testdata")
	db := database(t, "golang-migrate")
	results := make(chan result, 2)
	for i := 0; i < 2; i++ {
		go func() {
			results <- runTool(t, dir, baseEnv(), bin, "-path", ".", "-database", url(db), "up")
		}()
	}
	for i := 0; i < 2; i++ {
		if r := <-results; r.code != 0 {
			t.Errorf("a migrator failed: %s", r)
		}
	}
	checkLedger(t, direct(t, db), migrateLedger, []string{"2"})
}
