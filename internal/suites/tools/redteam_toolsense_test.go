package tools

import (
	"context"
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

// knex's fix for a constraint, followed literally: ADD ... NOT VALID in
// one migration, VALIDATE in the next with exports.config = { transaction:
// false }, both pending in one migrate:latest (knex then runs the first in
// a transaction of its own): pgguard refuses neither and the constraint
// ends VALID.
func TestRedteamKnexNotValidFollowed(t *testing.T) {
	t.Parallel()
	needPG(t)
	_, knex := nodeBin(t, "knex")
	project := need(t, filepath.Join(nodeDir, "knex"), "the knex project", "testdata")
	db := database(t, "knex")
	r := runTool(t, project, baseEnv("DATABASE_URL="+url(db), "MIGRATIONS="+filepath.Join(project, "notvalid-followed")),
		knex, "migrate:latest", "--knexfile", "knexfile.js")
	if r.code != 0 {
		t.Fatalf("the fix, followed, was refused or failed: %s", r)
	}
	var valid bool
	if err := direct(t, db).QueryRow(context.Background(), "SELECT convalidated FROM pg_constraint WHERE conname = 'big_account_nonnegative'").Scan(&valid); err != nil || !valid {
		t.Fatalf("the constraint is not VALID (%v, %v): %s", valid, err, r)
	}
}

// node-pg-migrate told to keep its ledger in "migrations"
// (--migrations-table migrations), a common setting: TypeORM's word. Its
// user must read the fix in node-pg-migrate's terms, which its advisory
// lock ("lockObtained", sent before any migration) makes known.
func TestRedteamNodePgMigrateRenamedLedger(t *testing.T) {
	t.Parallel()
	needPG(t)
	_, bin := nodeBin(t, "node-pg-migrate")
	project := need(t, filepath.Join(nodeDir, "pgmigrate"), "the node-pg-migrate project", "testdata")
	db := database(t, "node_pg_migrate")
	r := runTool(t, project, baseEnv("DATABASE_URL="+url(db)), bin, "up", "-m", "index-default", "--migrations-table", "migrations")
	t.Logf("%s", r)
	if r.code == 0 || !strings.Contains(r.out, "pgguard: create-index:") {
		t.Fatalf("the migration was not refused by create-index")
	}
	if !strings.Contains(r.out, "in node-pg-migrate, put it in a migration of its own that calls pgm.noTransaction()") {
		t.Errorf("the node-pg-migrate user does not read the fix in node-pg-migrate's terms")
	}
	for _, other := range []string{"TypeORM", "migration:run", "knex", "Rails"} {
		if strings.Contains(r.out, other) {
			t.Errorf("what node-pg-migrate printed names another tool (%q)", other)
		}
	}
}
