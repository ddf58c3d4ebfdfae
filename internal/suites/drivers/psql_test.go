package drivers

import (
	"os"
	"strings"
	"testing"
)

// psql: simple Query messages; a -c string with several statements is one
// Query; a script sends each statement as its own Query unless they are
// joined with \;. Its output and exit code show whether each statement got its
// own result.
func TestPsql(t *testing.T) {
	t.Parallel()
	needPG(t)
	psql := pg.Tool("psql")
	if _, err := os.Stat(psql); err != nil {
		missing(t, "psql", err, "apt-get install postgresql-client")
	}
	db := database(t, "psql")
	env := clientEnv(db)
	// -X: no ~/.psqlrc; -q: no command tags; -A -t: bare values, one per line.
	run := func(t *testing.T, args ...string) result {
		t.Helper()
		return runProc(t, env, psql, append([]string{"-X", "-q", "-A", "-t"}, args...)...)
	}
	want := func(t *testing.T, r result, code int, stdout string, stderr ...string) {
		t.Helper()
		ok := r.code == code && r.stdout == stdout
		for _, s := range stderr {
			if !strings.Contains(r.stderr, s) {
				t.Errorf("stderr does not say %q", s)
				ok = false
			}
		}
		if !ok {
			// pgguard's refusals carry a recipe of many lines; the
			// messages are enough here.
			r.stderr = messages(r.stderr)
			t.Errorf("want exit code %d and stdout %q; got %s", code, stdout, r)
		}
	}

	t.Run("multi", func(t *testing.T) {
		r := run(t, "-v", "ON_ERROR_STOP=1", "-c", "CREATE TABLE IF NOT EXISTS t_multi (a int); SELECT 1")
		want(t, r, 0, "1\n")
		r = run(t, "-v", "ON_ERROR_STOP=1", "-c", "SELECT 'after'; SELECT g FROM generate_series(1, 2) g")
		want(t, r, 0, "after\n1\n2\n")
		checkState(t, db, []string{"t_multi"}, nil)
	})
	t.Run("rewritten", func(t *testing.T) {
		r := run(t, "-v", "ON_ERROR_STOP=1", "-c", "CREATE INDEX big_rw ON big (account)")
		want(t, r, 0, "", "NOTICE:  pgguard: create-index: ")
		checkState(t, db, []string{"big_rw"}, nil)
	})
	t.Run("refused", func(t *testing.T) {
		r := run(t, "-v", "ON_ERROR_STOP=1", "-c", "ALTER TABLE big ALTER COLUMN account TYPE bigint")
		want(t, r, 1, "", "ERROR:  pgguard: alter-column-type: ")
		checkState(t, db, nil, nil)
	})
	// A script that stops at its refused statement.
	t.Run("script-stop", func(t *testing.T) {
		r := run(t, "-v", "ON_ERROR_STOP=1", "-f", "testdata/psql/stop.sql")
		want(t, r, 3, "after allowed\nafter warned\nafter rewritten|300\n42\n44\n46\n48\n50\n52\n1\n2\n3\n",
			"WARNING:  pgguard: prefer-bigint: ", "NOTICE:  pgguard: create-index: ", "ERROR:  pgguard: create-index: ")
		checkState(t, db, []string{"t_script", "small_v_psql", "t_warned", "big_rw_script"}, []string{"big_in_tx"})
	})
	// A script that goes on after its refused statements: each later
	// statement must get its own result, in order.
	t.Run("script-continue", func(t *testing.T) {
		r := run(t, "-f", "testdata/psql/continue.sql")
		want(t, r, 0, "a1\na2\na3\na4\n0\na5!\na6!\n1\n2\n3\n4\n",
			"ERROR:  pgguard: alter-column-type: ", "ERROR:  pgguard: create-index: ", "current transaction is aborted")
		checkState(t, db, nil, []string{"big_in_tx2"})
	})
}

// messages keeps the lines of psql's stderr that carry a message (psql:
// file:line: SEVERITY:  text), not the DETAIL and HINT lines after them.
func messages(stderr string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(stderr, "\n") {
		for _, sev := range []string{"ERROR:  ", "WARNING:  ", "NOTICE:  ", "FATAL:  "} {
			if strings.Contains(l, sev) {
				b.WriteString(l)
				break
			}
		}
	}
	return b.String()
}
