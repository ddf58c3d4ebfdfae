package tools

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy"
)

// Flyway and Liquibase cannot be had on the test machines (Maven Central
// is out of reach, Debian packages neither), so testdata/jvm holds two
// programs that send through pgjdbc, their driver, exactly what `flyway
// migrate` and `liquibase update` send to PostgreSQL (their SQL, copied
// from their sources, and their transactions and connections), and print
// what they print around pgjdbc's error. See FlywayRun.java and
// LiquibaseRun.java for what is reproduced.

// jdbcJar is where Debian's libpostgresql-jdbc-java puts pgjdbc.
const jdbcJar = "/usr/share/java/postgresql.jar"

const jdkInstall = "apt-get install default-jdk-headless libpostgresql-jdbc-java"

var (
	jvmOnce sync.Once
	jvmCP   string // pgjdbc and the compiled programs
	jvmErr  error
)

// jvm compiles testdata/jvm once per run and returns the java command and
// the class path.
func jvm(t *testing.T) (java, cp string) {
	t.Helper()
	needPG(t)
	java = lookPath(t, "java", jdkInstall)
	javac := lookPath(t, "javac", jdkInstall)
	need(t, jdbcJar, "pgjdbc", jdkInstall)
	jvmOnce.Do(func() {
		// Beside the server's log: removed when the package's run ends.
		classes := filepath.Join(filepath.Dir(serverLog.Name()), "classes")
		srcs, err := filepath.Glob("testdata/jvm/*.java")
		if err != nil || len(srcs) == 0 {
			jvmErr = fmt.Errorf("no testdata/jvm/*.java: %v", err)
			return
		}
		out, err := exec.Command(javac, append([]string{"-cp", jdbcJar, "-d", classes}, srcs...)...).CombinedOutput()
		if err != nil {
			jvmErr = fmt.Errorf("javac: %v\n%s", err, out)
			return
		}
		jvmCP = jdbcJar + string(os.PathListSeparator) + classes
	})
	if jvmErr != nil {
		t.Fatal(jvmErr)
	}
	return java, jvmCP
}

// runJVM runs one of the programs of testdata/jvm. A small heap and only
// the C1 JIT: the JVMs start faster and leave the cores to PostgreSQL.
func runJVM(t *testing.T, env []string, class string, args ...string) result {
	t.Helper()
	java, cp := jvm(t)
	return runTool(t, ".", env, java, append([]string{"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx64m", "-cp", cp, class}, args...)...)
}

// jdbcURL is the JDBC URL of db through pgguard; extra is appended to its
// query.
func jdbcURL(db, extra string) string {
	return fmt.Sprintf("jdbc:postgresql://%s/%s?sslmode=disable%s", addrOf(db), db, extra)
}

// flyway runs FlywayRun (`flyway migrate`) on a scenario under
// testdata/flyway, with FLYWAY_URL and the credentials in the environment
// as Flyway reads them.
func flyway(t *testing.T, db, sc, urlExtra string, args ...string) result {
	t.Helper()
	dir := need(t, filepath.Join("testdata/flyway", sc), "the Flyway migrations", "testdata")
	env := baseEnv("FLYWAY_URL="+jdbcURL(db, urlExtra), "FLYWAY_USER="+pgtest.SuperUser, "FLYWAY_PASSWORD="+pgtest.Password)
	return runJVM(t, env, "FlywayRun", append([]string{"-locations=filesystem:" + dir}, append(args, "migrate")...)...)
}

// liquibase runs LiquibaseRun (`liquibase update`) on a scenario's
// formatted-SQL changelog under testdata/liquibase, polling a held
// changelog lock every second instead of every 10.
func liquibase(t *testing.T, db, sc string) result {
	t.Helper()
	changelog := need(t, filepath.Join("testdata/liquibase", sc, "changelog.sql"), "the Liquibase changelog", "testdata")
	env := baseEnv("LIQUIBASE_COMMAND_URL="+jdbcURL(db, ""), "LIQUIBASE_COMMAND_USERNAME="+pgtest.SuperUser,
		"LIQUIBASE_COMMAND_PASSWORD="+pgtest.Password)
	return runJVM(t, env, "LiquibaseRun", "--changelog-file="+changelog, "--changelog-lock-poll-rate=1", "update")
}

const flywayLedger = "SELECT script FROM flyway_schema_history WHERE success ORDER BY installed_rank"

// Flyway: each versioned migration in a transaction, unless its script is
// CREATE INDEX CONCURRENTLY (Flyway's parser knows it cannot run in one) or
// its .sql.conf says executeInTransaction=false. By default (Flyway 10 and
// later) the migration runs on a connection of its own while the main
// connection holds the lock in an open transaction and writes the history;
// CREATE INDEX CONCURRENTLY then waits for that transaction forever, with
// or without pgguard (flyway/flyway#3497, #3682), so Flyway's docs say to
// run it with -postgresql.transactional.lock=false: one connection, a
// session lock, and the history table read on the migration's connection.
// pgguard tells Flyway from its history table there, and on the default
// mode's migration connection from the RDS probe Flyway sends first.
func TestFlyway(t *testing.T) {
	t.Parallel()
	jvm(t)
	scs := scenarios()
	for i := range scs {
		if scs[i].name == "index-default" {
			scs[i].output = []string{"Changes successfully rolled back."}
		}
	}
	scs = append(scs,
		// With executeInTransaction=false, the default CREATE INDEX runs
		// alone in autocommit: pgguard runs it CONCURRENTLY.
		scenario{name: "index-conf", ledger: []string{"create_payees", "index_big"}, present: []string{"payees", "big_account_idx"}},
		// One connection, and an application_name of the user's own: the
		// history table read before the migration names Flyway.
		scenario{name: "index-default-one-connection", rule: "create-index", ledger: []string{"create_payees"},
			present: []string{"payees"}, absent: []string{"big_account_idx"}},
		firstStatement(),
	)
	runScenarios(t, tool{
		name:         "flyway",
		sense:        policy.ToolFlyway,
		ledger:       flywayLedger,
		idiom:        "in Flyway, put it alone in a versioned migration of its own",
		printsDetail: true,
		migrate: func(t *testing.T, db, sc string) result {
			switch sc {
			case "index-concurrent", "index-conf":
				return flyway(t, db, sc, "", "-postgresql.transactional.lock=false")
			case "index-default-one-connection":
				return flyway(t, db, "index-default", "&ApplicationName=payments-deploy", "-postgresql.transactional.lock=false")
			}
			return flyway(t, db, sc, "")
		},
	}, scs)
}

// firstStatement is the scenario index-small-first: a migration whose
// first statement is CREATE INDEX on small (10 rows). With autocommit
// off, pgjdbc sends BEGIN in the same batch as the first statement of a
// transaction; pgguard judges that statement ahead, with its catalog,
// before the batch reaches the server (proxy/enforce warm.go), so small
// is small and the index is built as a migration that is not alone in its
// transaction may build it.
func firstStatement() scenario {
	return scenario{name: "index-small-first", ledger: []string{"create_payees", "index_small"},
		present: []string{"payees", "small_v_idx"}}
}

// Two Flyway runs started together (two replicas of a deploy): the second
// polls pg_try_advisory_xact_lock every second while the first holds it
// through a migration longer than pgguard's lock_timeout, then finds
// nothing left to do. Flyway never waits inside pg_advisory_lock, so
// pgguard's lock_timeout has nothing to cut; both must finish.
func TestFlywayTwoRunsTogether(t *testing.T) {
	t.Parallel()
	jvm(t)
	for _, mode := range []struct {
		name string
		args []string
	}{{"transactional-lock", nil}, {"session-lock", []string{"-postgresql.transactional.lock=false"}}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			db := database(t, "flyway")
			rs := together(func() result { return flyway(t, db, "concurrent", "", mode.args...) })
			for _, r := range rs {
				t.Logf("%s", r)
				if r.code != 0 {
					t.Errorf("a run failed: %s", r)
				}
			}
			if !strings.Contains(rs[0].out+rs[1].out, "No migration necessary") && !strings.Contains(rs[0].out+rs[1].out, "Successfully applied 1 migration") {
				t.Errorf("neither run found the other's work done; both applied everything?")
			}
			checkLedger(t, direct(t, db), flywayLedger, []string{"slow", "create_payees"})
		})
	}
}

const liquibaseLedger = "SELECT id FROM databasechangelog ORDER BY orderexecuted"

// Liquibase: each changeset in a transaction of its own, or in autocommit
// with runInTransaction:false; its row in databasechangelog afterwards.
func TestLiquibase(t *testing.T) {
	t.Parallel()
	jvm(t)
	scs := append(scenarios(), firstStatement())
	for i := range scs {
		if scs[i].rule != "" {
			// The lock is released after a failure too.
			scs[i].then = liquibaseUnlocked
		}
	}
	runScenarios(t, tool{
		name:         "liquibase",
		sense:        policy.ToolLiquibase,
		ledger:       liquibaseLedger,
		idiom:        "in Liquibase, put it in a changeset of its own with runInTransaction:false",
		printsDetail: true,
		migrate: func(t *testing.T, db, sc string) result {
			return liquibase(t, db, sc)
		},
	}, scs)
}

func liquibaseUnlocked(t *testing.T, db string) {
	if got := column(t, direct(t, db), "SELECT locked::text FROM databasechangeloglock"); len(got) != 1 || got[0] != "false" {
		t.Errorf("databasechangeloglock holds %q after the failed run, want one unlocked row", got)
	}
}

// Two Liquibase runs started together: they race to create
// databasechangeloglock (the loser rolls back and retries), then the
// second finds the lock row taken and polls ("Waiting for changelog
// lock....") while the first runs a changeset longer than pgguard's
// lock_timeout. Both must finish, the changesets recorded once.
func TestLiquibaseTwoRunsTogether(t *testing.T) {
	t.Parallel()
	jvm(t)
	db := database(t, "liquibase")
	rs := together(func() result { return liquibase(t, db, "concurrent") })
	for _, r := range rs {
		t.Logf("%s", r)
		if r.code != 0 {
			t.Errorf("a run failed: %s", r)
		}
	}
	if !strings.Contains(rs[0].out+rs[1].out, "Waiting for changelog lock....") {
		t.Errorf("neither run waited for the other's changelog lock")
	}
	checkLedger(t, direct(t, db), liquibaseLedger, []string{"slow", "create_payees"})
	liquibaseUnlocked(t, db)
}

// together starts two runs at once and returns both results.
func together(run func() result) [2]result {
	var rs [2]result
	var wg sync.WaitGroup
	for i := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs[i] = run()
		}()
	}
	wg.Wait()
	return rs
}
