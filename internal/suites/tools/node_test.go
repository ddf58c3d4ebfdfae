package tools

import (
	"os/exec"
	"path/filepath"
	"strings"
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
// of them says exports.config = { transaction: false }. The CLI (3.3)
// prints the error's message and its stack, not its detail or hint (3.1
// printed the detail too): the fix in the message is all its user sees.
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

// knex.migrate.latest() from code (testdata/node/knex/latest.js), its
// rejection unhandled: node prints the error's stack, whose first line is
// the message with the fix, then the error's properties, pg's detail (the
// recipe) and hint among them. Code that logs only err.message shows the
// fix alone, which is why the fix is in the message.
func TestKnexFromCode(t *testing.T) {
	t.Parallel()
	needPG(t)
	node, _ := nodeBin(t, "knex")
	project := need(t, filepath.Join(nodeDir, "knex"), "the knex project", "testdata")
	db := database(t, "knex")
	r := runTool(t, project, baseEnv("DATABASE_URL="+url(db), "MIGRATIONS="+filepath.Join(project, "volatile-default")), node, "latest.js")
	t.Logf("%s", r)
	if r.code == 0 {
		t.Fatalf("the migration was not refused: %s", r)
	}
	for _, want := range []string{"pgguard: add-column-volatile-default:", " Fix: add the column without the default",
		"exports.config = { transaction: false }", "knex.raw", "detail: ", "Safe recipe:", "hint: "} {
		if !strings.Contains(r.out, want) {
			t.Errorf("what node printed lacks %q", want)
		}
	}
	checkState(t, direct(t, db), nil, []string{"payees", "big.ref"})
}
