package tools

import (
	"path/filepath"
	"strings"
	"testing"
)

// A knex project whose ledger is renamed by its knexfile
// (migrations: { tableName: 'migrations' }, a common setting) sends
// select "name" from "migrations" order by "id" asc: the quoted word
// TypeORM's ledger is recognised by. The knex user must still read the fix
// in knex's terms, and no other tool's.
func TestRedteamKnexRenamedLedger(t *testing.T) {
	t.Parallel()
	needPG(t)
	_, knex := nodeBin(t, "knex")
	project := need(t, filepath.Join(nodeDir, "knex"), "the knex project", "testdata")
	db := database(t, "knex")
	r := runTool(t, project, baseEnv("DATABASE_URL="+url(db), "MIGRATIONS="+filepath.Join(project, "renamed-ledger")),
		knex, "migrate:latest", "--knexfile", "knexfile-renamed.js")
	t.Logf("%s", r)
	if r.code == 0 {
		t.Fatalf("the migration was not refused")
	}
	if !strings.Contains(r.out, "pgguard: create-index:") {
		t.Fatalf("not refused by create-index")
	}
	if !strings.Contains(r.out, "in knex, put it in a migration file of its own with exports.config = { transaction: false }") {
		t.Errorf("the knex user does not read the fix in knex's terms")
	}
	for _, other := range []string{"TypeORM", "migration:run", "sequelize", "Django", "Rails"} {
		if strings.Contains(r.out, other) {
			t.Errorf("what knex printed names another tool (%q)", other)
		}
	}
}
