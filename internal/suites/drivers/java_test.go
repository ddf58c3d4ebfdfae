package drivers

import (
	"os"
	"os/exec"
	"testing"
)

// jdbcJar is where Debian's libpostgresql-jdbc-java puts pgjdbc.
const jdbcJar = "/usr/share/java/postgresql.jar"

// pgjdbc: everything in the extended protocol; PreparedStatements become
// named server-side statements after five executions; autocommit off sends
// BEGIN in the same pipeline as the first statement; a multi-statement
// string is several Parse/Bind/Execute before one Sync.
func TestPgJDBC(t *testing.T) {
	t.Parallel()
	needPG(t)
	java, err := exec.LookPath("java")
	if err != nil {
		missing(t, "a JDK", err, "apt-get install default-jdk-headless")
	}
	javac, err := exec.LookPath("javac")
	if err != nil {
		missing(t, "a JDK (javac)", err, "apt-get install default-jdk-headless")
	}
	if _, err := os.Stat(jdbcJar); err != nil {
		missing(t, "pgjdbc", err, "apt-get install libpostgresql-jdbc-java")
	}
	// Compiled once, then one JVM per scenario; `java Drivers.java` would
	// compile it again for each.
	classes := t.TempDir()
	if out, err := exec.Command(javac, "-cp", jdbcJar, "-d", classes, "testdata/java/Drivers.java").CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	db := database(t, "java")
	env := clientEnv(db)
	cp := jdbcJar + string(os.PathListSeparator) + classes
	runScenarios(t, db, []scenario{
		{name: "allowed", present: []string{"t_allowed", "small_v_ps", "t_warned"}},
		{name: "rewritten", present: []string{"big_rw_stmt", "big_rw_ps"}},
		{name: "rewritten-simple", present: []string{"big_rw_simple"}},
		{name: "refused", absent: []string{"big_in_tx"}},
		{name: "multi", present: []string{"t_multi", "t_batch"}},
	}, func(t *testing.T, name string) result {
		// A small heap and only the C1 JIT: the JVMs start faster and
		// leave the 2 cores to PostgreSQL.
		return runProc(t, env, java, "-XX:TieredStopAtLevel=1", "-Xmx64m", "-cp", cp, "Drivers", name)
	})
}
