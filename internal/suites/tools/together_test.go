package tools

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// Two deploys' migrators started together: whichever takes the tool's
// lock first runs a migration that holds it until the test opens a gate
// (a DO block that polls the table gate), and the test keeps the gate shut
// until the other run has either failed or waited on a lock for longer
// than pgguard's lock_timeout (3s). What the other run does is the tool's
// choice: wait for the lock and then find nothing to do, or fail at once.
// Each case runs straight to PostgreSQL and through pgguard, and both must
// do what the tool does: pgguard must not turn a wait into a failure (its
// short lock_timeout must not cut a wait for a lock that blocks nobody's
// reads or writes).

// directURL is the connection URL of db straight to PostgreSQL.
func directURL(db string) string { return pg.DSN(pgtest.SuperUser, db) }

// twoRuns is how a tool serialises two runs.
type twoRuns struct {
	tool string
	// migrate runs the tool over its "concurrent" migrations on dbURL.
	migrate func(t *testing.T, dbURL string) result
	// ledger and want: what the ledger holds afterwards.
	ledger string
	want   []string
	// prepare, when set, is an earlier deploy's run that created the
	// ledger: tools that create it before they take their lock race each
	// other on a fresh database, which is not what this test is about.
	prepare func(t *testing.T, dbURL string) result
	// secondFails, when set, is what the run that did not get the lock
	// prints when it fails at once (the tool does not wait); "" when both
	// runs must finish.
	secondFails string
}

// heldLonger is how long the test keeps the gate shut once a run waits on
// a lock: longer than pgguard's lock_timeout.
const heldLonger = 4 * time.Second

// runTwo runs the case straight to PostgreSQL and through pgguard.
func runTwo(t *testing.T, c twoRuns) {
	t.Helper()
	for _, via := range []string{"direct", "pgguard"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			db := database(t, c.tool)
			dbURL := url(db)
			if via == "direct" {
				dbURL = directURL(db)
			}
			if c.prepare != nil {
				if r := c.prepare(t, dbURL); r.code != 0 {
					t.Fatalf("creating the ledger: %s", r)
				}
			}
			fails := c.secondFails
			rs := gatedTogether(t, db, func() result { return c.migrate(t, dbURL) })
			var failed []result
			for _, r := range rs {
				t.Logf("%s", r)
				if r.code != 0 {
					failed = append(failed, r)
				}
				if strings.Contains(r.out, "pgguard:") {
					t.Errorf("pgguard spoke up: %s", r)
				}
			}
			switch {
			case fails == "" && len(failed) > 0:
				t.Errorf("a run failed instead of waiting for the other: %s", failed[0])
			case fails != "" && (len(failed) != 1 || !strings.Contains(failed[0].out, fails)):
				t.Errorf("one run should fail with %q; %d failed", fails, len(failed))
			}
			checkLedger(t, direct(t, db), c.ledger, c.want)
		})
	}
}

// gatedTogether creates the gate in db, starts two runs together, opens
// the gate once one run holds it shut (its migration polls the gate) and
// the other has ended or has waited on a lock for heldLonger, and returns
// both results.
func gatedTogether(t *testing.T, db string, run func() result) [2]result {
	t.Helper()
	ctx := context.Background()
	conn := direct(t, db)
	if _, err := conn.Exec(ctx, "CREATE TABLE gate (open boolean)"); err != nil {
		t.Fatal(err)
	}
	done := make(chan result, 2)
	for i := 0; i < 2; i++ {
		go func() { done <- run() }()
	}
	var rs [2]result
	n := 0
	var waitingSince time.Time
	for deadline := time.Now().Add(procTimeout); ; {
		var gated, waiting int
		err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE query LIKE '%FROM gate WHERE open%'),
				count(*) FILTER (WHERE wait_event_type = 'Lock')
			FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND pid <> pg_backend_pid()`, db).Scan(&gated, &waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting == 0 {
			waitingSince = time.Time{}
		} else if waitingSince.IsZero() {
			waitingSince = time.Now()
		}
		if gated > 0 && (n > 0 || !waitingSince.IsZero() && time.Since(waitingSince) > heldLonger) {
			break
		}
		if n == 2 || time.Now().After(deadline) {
			t.Fatalf("no run got to the gate with the other one ended or waiting (%d ended): %v", n, rs[:n])
		}
		select {
		case rs[n] = <-done:
			n++
		case <-time.After(50 * time.Millisecond):
		}
	}
	if _, err := conn.Exec(ctx, "INSERT INTO gate VALUES (true)"); err != nil {
		t.Fatal(err)
	}
	for ; n < 2; n++ {
		rs[n] = <-done
	}
	return rs
}

// node-pg-migrate 9 takes pg_try_advisory_lock and fails when another run
// holds it ("--advisory-lock-mode fail", the default, and node-pg-migrate
// 7 and 8's only way), or waits in pg_advisory_lock with
// --advisory-lock-mode wait.
func TestNodePgMigrateTwoRunsTogether(t *testing.T) {
	t.Parallel()
	_, bin := nodeBin(t, "node-pg-migrate")
	project := need(t, filepath.Join(nodeDir, "pgmigrate"), "the node-pg-migrate project", "testdata")
	for _, mode := range []struct{ name, fails string }{
		{"wait", ""},
		{"fail", "Another migration is already running"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			runTwo(t, twoRuns{
				tool: "node-pg-migrate",
				migrate: func(t *testing.T, dbURL string) result {
					return runTool(t, project, baseEnv("DATABASE_URL="+dbURL), bin, "up", "-m", "concurrent", "--advisory-lock-mode", mode.name)
				},
				ledger:      "SELECT name FROM pgmigrations ORDER BY id",
				want:        []string{"slow", "create_payees"},
				secondFails: mode.fails,
			})
		})
	}
}

// knex takes its lock inside the transaction that runs the migrations:
// UPDATE knex_migrations_lock SET is_locked = 1 WHERE is_locked = 0. A
// second run's UPDATE waits for the first's row lock until the first
// commits (with is_locked back at 0), then takes the lock, finds the
// migrations done and finishes: knex waits, straight to PostgreSQL and
// through pgguard, which runs a statement that only writes a tool's lock
// table without its short lock_timeout (policy.WritesOnlyToolLockTable),
// inside the transaction block too.
func TestKnexTwoRunsTogether(t *testing.T) {
	t.Parallel()
	_, knex := nodeBin(t, "knex")
	project := need(t, filepath.Join(nodeDir, "knex"), "the knex project", "testdata")
	run := func(t *testing.T, dbURL, dir string) result {
		return runTool(t, project, baseEnv("DATABASE_URL="+dbURL, "MIGRATIONS="+dir), knex, "migrate:latest", "--knexfile", "knexfile.js")
	}
	runTwo(t, twoRuns{
		tool:    "knex",
		prepare: func(t *testing.T, dbURL string) result { return run(t, dbURL, t.TempDir()) },
		migrate: func(t *testing.T, dbURL string) result { return run(t, dbURL, filepath.Join(project, "concurrent")) },
		ledger:  "SELECT name FROM knex_migrations ORDER BY id",
		want:    []string{"slow", "create_payees"},
	})
}

// Rails' migrator takes pg_try_advisory_lock and raises
// ConcurrentMigrationError when another run holds it: Rails does not wait,
// straight to PostgreSQL or through pgguard.
func TestRailsTwoRunsTogether(t *testing.T) {
	t.Parallel()
	ruby := lookPath(t, "ruby", "apt-get install ruby-activerecord ruby-pg")
	project := need(t, "testdata/rails", "the Rails project", "testdata")
	run := func(t *testing.T, dbURL, dir string) result {
		return runTool(t, project, baseEnv("DATABASE_URL="+dbURL, "MIGRATIONS="+dir), ruby, "migrate.rb")
	}
	runTwo(t, twoRuns{
		tool:        "rails",
		prepare:     func(t *testing.T, dbURL string) result { return run(t, dbURL, t.TempDir()) },
		migrate:     func(t *testing.T, dbURL string) result { return run(t, dbURL, filepath.Join(project, "concurrent")) },
		ledger:      "SELECT version FROM schema_migrations ORDER BY version",
		want:        []string{"20260101000001", "20260101000002"},
		secondFails: "Cannot run migrations because another migration process is currently running.",
	})
}

// Prisma waits in pg_advisory_lock(72707369) (for up to 10 seconds), each
// of its statements a query of its own; psql sends them (testdata/prisma/
// deploy.psql).
func TestPrismaTwoRunsTogether(t *testing.T) {
	t.Parallel()
	runTwo(t, twoRuns{
		tool:    "prisma",
		migrate: func(t *testing.T, dbURL string) result { return prismaDeploy(t, dbURL, "concurrent") },
		ledger:  `SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL`,
		want:    []string{"concurrent"},
	})
}
