package drivers

import (
	"os/exec"
	"testing"
)

// python3 is Debian's, for its python3-psycopg2: a python3 earlier on PATH
// (pyenv, a venv) would not have it.
const python3 = "/usr/bin/python3"

// psycopg2: simple Query messages only, parameters interpolated on the
// client; with autocommit off (its default) every statement runs inside a
// BEGIN psycopg2 sends itself, so there CREATE INDEX on big is refused.
func TestPsycopg2(t *testing.T) {
	t.Parallel()
	needPG(t)
	if out, err := exec.Command(python3, "-c", "import psycopg2").CombinedOutput(); err != nil {
		missing(t, "psycopg2 for "+python3, err, "apt-get install python3-psycopg2: "+string(out))
	}
	for _, mode := range []string{"autocommit", "transaction"} {
		t.Run(mode, func(t *testing.T) {
			// Own database: a transaction left open in one mode would make
			// the other's CREATE INDEX CONCURRENTLY wait for it.
			t.Parallel()
			db := database(t, "psycopg2_"+mode)
			env := clientEnv(db)
			scs := []scenario{
				{name: "allowed", present: []string{"t_allowed_" + mode, "small_v_" + mode, "t_warned_" + mode}},
				{name: "refused", absent: []string{"big_in_tx_" + mode}},
				{name: "multi", present: []string{"t_multi_" + mode}},
			}
			if mode == "autocommit" {
				scs = append(scs, scenario{name: "rewritten", present: []string{"big_rw"}})
			}
			runScenarios(t, db, scs, func(t *testing.T, name string) result {
				return runProc(t, env, python3, "testdata/python/drivers.py", name, mode)
			})
		})
	}
}
