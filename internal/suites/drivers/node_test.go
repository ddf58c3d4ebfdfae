package drivers

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

const nodeDir = "testdata/node"

// node-postgres: simple queries, unnamed parameterised queries (extended
// protocol, unnamed statement), named statements, and multi-statement
// strings in one Query.
func TestNodePostgres(t *testing.T) {
	t.Parallel()
	needPG(t)
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node", err, "apt-get install nodejs npm")
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "pg", "package.json")); err != nil {
		missing(t, "the pg npm package", err, "npm ci --prefix "+filepath.Join("internal/suites/drivers", nodeDir)+", or make npm-deps")
	}
	db := database(t, "node")
	env := clientEnv(db)
	script, err := filepath.Abs(filepath.Join(nodeDir, "drivers.js"))
	if err != nil {
		t.Fatal(err)
	}
	runScenarios(t, db, []scenario{
		{name: "allowed", present: []string{"t_allowed", "small_v_named", "small_v_ext", "t_warned"}},
		{name: "rewritten", present: []string{"big_rw_simple", "big_rw_named", "big_rw_ext"}},
		{name: "refused", absent: []string{"big_in_tx", "big_in_tx_ext"}},
		{name: "multi", present: []string{"t_multi"}},
	}, func(t *testing.T, name string) result {
		return runProc(t, env, node, script, name)
	})
}
