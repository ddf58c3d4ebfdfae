package tools

import (
	"os/exec"
	"path/filepath"
	"testing"
)

const nodeDir = "testdata/node"

// nodeBin finds an npm package's command under testdata/node.
func nodeBin(t *testing.T, name string) (node, bin string) {
	t.Helper()
	node = lookPath(t, "node", "apt-get install nodejs npm")
	if _, err := exec.LookPath("node"); err != nil {
		missing(t, "node", err, "apt-get install nodejs npm")
	}
	bin = need(t, filepath.Join(nodeDir, "node_modules", ".bin", name), name,
		"npm ci --prefix internal/tools/"+nodeDir+", or make npm-deps")
	return node, bin
}

// knex: all pending migrations in one transaction by default, unless one
// of them says exports.config = { transaction: false }. The CLI (3.1) prints
// the error's message and detail, not its hint.
func TestKnex(t *testing.T) {
	t.Parallel()
	needPG(t)
	_, knex := nodeBin(t, "knex")
	project := need(t, filepath.Join(nodeDir, "knex"), "the knex project", "testdata")
	runScenarios(t, tool{
		name:           "knex",
		ledger:         "SELECT name FROM knex_migrations ORDER BY id",
		idiom:          "exports.config = { transaction: false }",
		oneTransaction: true,
		printsDetail:   true,
		migrate: func(t *testing.T, db, sc string) result {
			return runTool(t, project, baseEnv("DATABASE_URL="+url(db), "MIGRATIONS="+filepath.Join(project, sc)),
				knex, "migrate:latest", "--knexfile", "knexfile.js")
		},
	}, scenarios())
}
