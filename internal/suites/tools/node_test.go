package tools

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pgguard/pgguard/policy"
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
		"npm ci --prefix internal/suites/tools/"+nodeDir+", or make npm-deps")
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
		sense:          policy.ToolKnex,
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

// node-pg-migrate: all pending migrations in one transaction by default
// (--single-transaction), a migration that calls pgm.noTransaction() without
// one.
func TestNodePgMigrate(t *testing.T) {
	t.Parallel()
	needPG(t)
	_, bin := nodeBin(t, "node-pg-migrate")
	project := need(t, filepath.Join(nodeDir, "pgmigrate"), "the node-pg-migrate project", "testdata")
	scs := scenarios()
	runScenarios(t, tool{
		name:           "node-pg-migrate",
		sense:          policy.ToolNodePgMigrate,
		ledger:         "SELECT name FROM pgmigrations ORDER BY id",
		idiom:          "pgm.noTransaction()",
		oneTransaction: true,
		printsDetail:   true,
		migrate: func(t *testing.T, db, sc string) result {
			return runTool(t, project, baseEnv("DATABASE_URL="+url(db)), bin, "up", "-m", sc)
		},
	}, scs)
}

// TypeORM: migration:run runs every pending migration in one transaction
// by default ("-t all"); a migration with transaction = false needs
// "-t each".
func TestTypeORM(t *testing.T) {
	t.Parallel()
	needPG(t)
	_, bin := nodeBin(t, "typeorm")
	project := need(t, filepath.Join(nodeDir, "typeorm"), "the TypeORM project", "testdata")
	scs := scenarios()
	runScenarios(t, tool{
		name:           "typeorm",
		sense:          policy.ToolTypeORM,
		ledger:         "SELECT name FROM migrations ORDER BY id",
		idiom:          "transaction = false",
		oneTransaction: true,
		printsDetail:   true,
		migrate: func(t *testing.T, db, sc string) result {
			args := []string{"migration:run", "-d", "datasource.js"}
			if sc == "index-concurrent" {
				args = append(args, "-t", "each")
			}
			return runTool(t, project, baseEnv("DATABASE_URL="+url(db), "MIGRATIONS="+filepath.Join(project, sc)), bin, args...)
		},
	}, scs)
}
