package tools

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// A ruleCase is a migration that a rule refuses, written as raw SQL that
// every tool can send, and the step its fix asks for.
type ruleCase struct {
	rule, sql string
	step      string // "outside", "separate", "backfill" or "later"
	// same, for a rule whose fix is not a step in the tool (pg_repack):
	// the words its fix says in every tool, instead of step's.
	same string
	// psql, when set, is sql as psql must send it: psql sends each
	// statement as a query of its own.
	psql string
	// setup runs straight on the database before the tool.
	setup string
}

// ruleCases are the refusals every tool's migration can hit: each kind of
// step a fix asks for, in every rule that refuses a migration's statement
// on the template's table big (the scenarios of scenario_test.go run
// create-index, alter-column-type and add-column-volatile-default through
// each tool's own schema builder as well). drop-index is not here: pgguard
// refuses no DROP INDEX (alone it runs CONCURRENTLY, in a transaction as
// sent).
// REINDEX follows a SELECT so that it is not alone in its query, where
// pgguard would run it CONCURRENTLY (golang-migrate, Prisma).
var ruleCases = []ruleCase{
	{rule: "add-check-constraint", step: "separate", sql: "ALTER TABLE big ADD CONSTRAINT big_account_positive CHECK (account > 0)"},
	{rule: "set-not-null", step: "separate", sql: "ALTER TABLE big ALTER COLUMN note SET NOT NULL"},
	{rule: "large-dml", step: "backfill", sql: "UPDATE big SET note = 'n'"},
	{rule: "add-foreign-key", step: "separate", sql: "ALTER TABLE big ADD CONSTRAINT big_account_fk FOREIGN KEY (account) REFERENCES big (id)"},
	{rule: "add-unique-constraint", step: "outside", sql: "ALTER TABLE big ADD CONSTRAINT big_note_key UNIQUE (note)"},
	{rule: "truncate", step: "backfill", sql: "TRUNCATE big"},
	{rule: "drop-table", step: "later", sql: "DROP TABLE big"},
	{rule: "drop-column", step: "later", sql: "ALTER TABLE big DROP COLUMN note"},
	{rule: "rename-table", step: "later", sql: "ALTER TABLE big RENAME TO big_archive"},
	{rule: "vacuum-full", step: "outside", sql: "VACUUM FULL big"},
	{rule: "rename-column", step: "later", sql: "ALTER TABLE big RENAME COLUMN note TO memo"},
	{rule: "reindex", step: "outside", sql: "SELECT 1; REINDEX INDEX big_pkey", psql: "BEGIN; REINDEX INDEX big_pkey; COMMIT"},
	// An enum column's new labels: ALTER TYPE ... ADD VALUE, outside a
	// transaction, instead of a new type.
	{rule: "alter-column-type", step: "outside", sql: "ALTER TABLE big ALTER COLUMN mood TYPE text",
		setup: "CREATE TYPE mood AS ENUM ('calm', 'busy'); ALTER TABLE big ADD COLUMN mood mood"},
	// A column widened (int to bigint): a new column, backfilled.
	{rule: "alter-column-type", step: "backfill", sql: "ALTER TABLE big ALTER COLUMN account TYPE bigint"},
	// ADD ... NOT VALID and its VALIDATE in one migration: one query, one
	// transaction, in every tool; psql -f sends them as queries of their
	// own, so its migration spells the transaction.
	{rule: "validate-in-same-transaction", step: "separate",
		sql:  "ALTER TABLE big ADD CONSTRAINT big_account_nonnegative CHECK (account >= 0) NOT VALID; ALTER TABLE big VALIDATE CONSTRAINT big_account_nonnegative",
		psql: "BEGIN; ALTER TABLE big ADD CONSTRAINT big_account_nonnegative CHECK (account >= 0) NOT VALID; ALTER TABLE big VALIDATE CONSTRAINT big_account_nonnegative; COMMIT"},
	// A plain CREATE INDEX inside the migration's transaction (a query of
	// several statements is one, for the tools that run none: alone,
	// pgguard would run it CONCURRENTLY).
	{rule: "create-index", step: "outside", sql: "SELECT 1; CREATE INDEX big_note_idx ON big (note)",
		psql: "BEGIN; CREATE INDEX big_note_idx ON big (note); COMMIT"},
	// CREATE INDEX CONCURRENTLY where it cannot run: in a transaction.
	{rule: "concurrently-in-transaction", step: "outside", sql: "SELECT 1; CREATE INDEX CONCURRENTLY big_note_cidx ON big (note)",
		psql: "BEGIN; CREATE INDEX CONCURRENTLY big_note_cidx ON big (note); COMMIT"},
	{rule: "add-column-volatile-default", step: "backfill", sql: "ALTER TABLE big ADD COLUMN token uuid DEFAULT gen_random_uuid()"},
	{rule: "set-logged", step: "backfill", sql: "ALTER TABLE big SET UNLOGGED"},
	// big, the large table, attached as a partition of a new table.
	{rule: "attach-partition", step: "separate", sql: "ALTER TABLE big_by_id ATTACH PARTITION big FOR VALUES FROM (1) TO (1000000)",
		setup: "CREATE TABLE big_by_id (LIKE big) PARTITION BY RANGE (id)"},
	// A view without the unique index that REFRESH ... CONCURRENTLY needs.
	{rule: "refresh-materialized-view", step: "outside", sql: "REFRESH MATERIALIZED VIEW big_totals",
		setup: "CREATE MATERIALIZED VIEW big_totals AS SELECT account, count(*) AS n FROM big GROUP BY account"},
	// The fix of these two is pg_repack from a shell, the same words in
	// every tool. pgguard refuses SET TABLESPACE before PostgreSQL sees
	// it; pg_default spares the test a tablespace of its own.
	{rule: "cluster", same: "use pg_repack", sql: "CLUSTER big USING big_pkey"},
	{rule: "set-tablespace", same: "use pg_repack --tablespace", sql: "ALTER TABLE big SET TABLESPACE pg_default"},
	// Last: its setup drops big's primary key, which cases above use.
	{rule: "add-primary-key", step: "outside", sql: "ALTER TABLE big ADD PRIMARY KEY (id)",
		setup: "ALTER TABLE big DROP CONSTRAINT big_pkey"},
}

// ruleTool is how a tool runs a migration of raw SQL: write puts it in a
// directory of migrations in the tool's form, run runs the tool on that
// directory, ledgers are the tables it keeps (dropped between cases, so
// that each case starts as a first run).
type ruleTool struct {
	name  string
	words map[string]string // the words of each step in the tool's terms
	// noRecipe: the tool prints only the error's message (knex 3.3's CLI).
	noRecipe bool
	ledgers  []string
	write    func(t *testing.T, dir, sql string)
	run      func(t *testing.T, db, dir string) result
}

// otherToolNames are the names a refusal must not print unless it is
// about that tool.
var otherToolNames = []string{"sequelize", "knex", "TypeORM", "node-pg-migrate", "golang-migrate", "Django", "Rails", "Flyway", "Liquibase", "Prisma", "psql"}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func ruleTools(t *testing.T) []ruleTool {
	return []ruleTool{
		{
			// sequelize-cli is installed for the e2e suite.
			name:    "sequelize",
			words:   map[string]string{"outside": "transaction: null", "separate": "not inside queryInterface.sequelize.transaction()", "backfill": "queryInterface.sequelize.query", "later": "queryInterface.sequelize.query"},
			ledgers: []string{`"SequelizeMeta"`},
			write: func(t *testing.T, dir, sql string) {
				writeFile(t, filepath.Join(dir, "20260101000001-rule-case.js"), "module.exports = {\n"+
					"  up: (queryInterface) => queryInterface.sequelize.query(`"+sql+"`),\n  down: async () => {},\n};\n")
			},
			run: func(t *testing.T, db, dir string) result {
				project := need(t, "../e2e/testdata/sequelize", "the sequelize-cli project", "testdata")
				bin := need(t, filepath.Join(project, "node_modules", ".bin", "sequelize-cli"), "sequelize-cli",
					"npm ci --prefix internal/suites/e2e/testdata/sequelize, or make npm-deps")
				bin, _ = filepath.Abs(bin)
				return runTool(t, project, baseEnv("DATABASE_URL="+url(db), "NODE_ENV=test"), bin,
					"db:migrate", "--migrations-path", dir, "--config", "config.js", "--env", "test")
			},
		},
		{
			name:     "knex",
			noRecipe: true,
			words:    map[string]string{"outside": "exports.config = { transaction: false }", "separate": "exports.config = { transaction: false }", "backfill": "knex.raw", "later": "knex.raw"},
			ledgers:  []string{"knex_migrations", "knex_migrations_lock"},
			write: func(t *testing.T, dir, sql string) {
				writeFile(t, filepath.Join(dir, "20260101000001_rule_case.js"), "exports.up = (knex) => knex.raw(`"+sql+"`);\nexports.down = async () => {};\n")
			},
			run: func(t *testing.T, db, dir string) result {
				_, knex := nodeBin(t, "knex")
				project := need(t, filepath.Join(nodeDir, "knex"), "the knex project", "testdata")
				return runTool(t, project, baseEnv("DATABASE_URL="+url(db), "MIGRATIONS="+dir), knex, "migrate:latest", "--knexfile", "knexfile.js")
			},
		},
		{
			name:    "node-pg-migrate",
			words:   map[string]string{"outside": "pgm.noTransaction()", "separate": "pgm.noTransaction()", "backfill": "pgm.db.query", "later": "pgm.sql"},
			ledgers: []string{"pgmigrations"},
			write: func(t *testing.T, dir, sql string) {
				writeFile(t, filepath.Join(dir, "1767225600001_rule_case.js"), "exports.up = (pgm) => { pgm.sql(`"+sql+"`); };\nexports.down = () => {};\n")
			},
			run: func(t *testing.T, db, dir string) result {
				_, bin := nodeBin(t, "node-pg-migrate")
				project := need(t, filepath.Join(nodeDir, "pgmigrate"), "the node-pg-migrate project", "testdata")
				return runTool(t, project, baseEnv("DATABASE_URL="+url(db)), bin, "up", "-m", dir)
			},
		},
		{
			name:    "typeorm",
			words:   map[string]string{"outside": "transaction = false", "separate": "-t each", "backfill": "queryRunner.query", "later": "queryRunner.query"},
			ledgers: []string{"migrations"},
			write: func(t *testing.T, dir, sql string) {
				writeFile(t, filepath.Join(dir, "1767225600001-RuleCase.js"), "module.exports = class RuleCase1767225600001 {\n"+
					"  name = 'RuleCase1767225600001';\n"+
					"  async up(queryRunner) { await queryRunner.query(`"+sql+"`); }\n"+
					"  async down() {}\n};\n")
			},
			run: func(t *testing.T, db, dir string) result {
				_, bin := nodeBin(t, "typeorm")
				project := need(t, filepath.Join(nodeDir, "typeorm"), "the TypeORM project", "testdata")
				return runTool(t, project, baseEnv("DATABASE_URL="+url(db), "MIGRATIONS="+dir), bin, "migration:run", "-d", "datasource.js")
			},
		},
		{
			name:    "golang-migrate",
			words:   map[string]string{"outside": "without BEGIN/COMMIT", "separate": "migration file of its own", "backfill": "migration file of its own", "later": "-- pgguard:allow"},
			ledgers: []string{"schema_migrations"},
			write: func(t *testing.T, dir, sql string) {
				writeFile(t, filepath.Join(dir, "1_rule_case.up.sql"), sql+";\n")
			},
			run: func(t *testing.T, db, dir string) result {
				bin := need(t, migrateBin, "golang-migrate", migrateInstall)
				bin, _ = filepath.Abs(bin)
				return runTool(t, dir, baseEnv(), bin, "-path", ".", "-database", url(db), "up")
			},
		},
		{
			name:    "django",
			words:   map[string]string{"outside": "atomic = False", "separate": "migration of its own", "backfill": "RunPython", "later": "RunSQL(["},
			ledgers: []string{"django_migrations"},
			write: func(t *testing.T, dir, sql string) {
				pkg := filepath.Join(dir, "rule_case_migrations")
				writeFile(t, filepath.Join(pkg, "__init__.py"), "")
				writeFile(t, filepath.Join(pkg, "0001_rule_case.py"), "from django.db import migrations\n\n\n"+
					"class Migration(migrations.Migration):\n    operations = [migrations.RunSQL(\"\"\""+sql+"\"\"\")]\n")
			},
			run: func(t *testing.T, db, dir string) result {
				project, _ := filepath.Abs(need(t, "testdata/django", "the Django project", "testdata"))
				env := baseEnv("DATABASE_URL="+url(db), "SCENARIO=ok", "MIGRATION_MODULE=rule_case_migrations",
					"PYTHONPATH="+project+string(os.PathListSeparator)+dir, "DJANGO_SETTINGS_MODULE=settings")
				return runTool(t, project, env, "/usr/bin/python3", "-m", "django", "migrate", "shop", "--no-input")
			},
		},
		{
			name:    "rails",
			words:   map[string]string{"outside": "disable_ddl_transaction!", "separate": "migration of its own", "backfill": "disable_ddl_transaction!", "later": "execute"},
			ledgers: []string{"schema_migrations", "ar_internal_metadata"},
			write: func(t *testing.T, dir, sql string) {
				writeFile(t, filepath.Join(dir, "20260101000001_rule_case.rb"), "class RuleCase < ActiveRecord::Migration[6.1]\n"+
					"  def up\n    execute <<~'SQL'\n      "+sql+"\n    SQL\n  end\nend\n")
			},
			run: func(t *testing.T, db, dir string) result {
				ruby := lookPath(t, "ruby", "apt-get install ruby-activerecord ruby-pg")
				project := need(t, "testdata/rails", "the Rails project", "testdata")
				return runTool(t, project, baseEnv("DATABASE_URL="+url(db), "MIGRATIONS="+dir), ruby, "migrate.rb")
			},
		},
		{
			name:    "flyway",
			words:   map[string]string{"outside": "executeInTransaction=false", "separate": "versioned migration of its own", "backfill": "executeInTransaction=false", "later": "/* pgguard:allow"},
			ledgers: []string{"flyway_schema_history"},
			write: func(t *testing.T, dir, sql string) {
				writeFile(t, filepath.Join(dir, "V1__rule_case.sql"), sql+";\n")
			},
			run: func(t *testing.T, db, dir string) result {
				env := baseEnv("FLYWAY_URL="+jdbcURL(db, ""), "FLYWAY_USER="+pgtest.SuperUser, "FLYWAY_PASSWORD="+pgtest.Password)
				return runJVM(t, env, "FlywayRun", "-locations=filesystem:"+dir, "migrate")
			},
		},
		{
			name:    "liquibase",
			words:   map[string]string{"outside": "runInTransaction:false", "separate": "changeset of its own", "backfill": "runInTransaction:false", "later": "/* pgguard:allow"},
			ledgers: []string{"databasechangelog", "databasechangeloglock"},
			write: func(t *testing.T, dir, sql string) {
				writeFile(t, filepath.Join(dir, "changelog.sql"), "--liquibase formatted sql\n\n--changeset app:rule_case\n"+sql+";\n")
			},
			run: func(t *testing.T, db, dir string) result {
				env := baseEnv("LIQUIBASE_COMMAND_URL="+jdbcURL(db, ""), "LIQUIBASE_COMMAND_USERNAME="+pgtest.SuperUser,
					"LIQUIBASE_COMMAND_PASSWORD="+pgtest.Password)
				return runJVM(t, env, "LiquibaseRun", "--changelog-file="+filepath.Join(dir, "changelog.sql"), "--changelog-lock-poll-rate=1", "update")
			},
		},
		{
			name:    "prisma",
			words:   map[string]string{"outside": "migration of its own", "separate": "migration of its own", "backfill": "migration.sql", "later": "-- pgguard:allow"},
			ledgers: []string{"_prisma_migrations"},
			write: func(t *testing.T, dir, sql string) {
				writeFile(t, filepath.Join(dir, "rule_case", "migration.sql"), sql+";\n")
			},
			run: func(t *testing.T, db, dir string) result {
				psql := lookPath(t, "psql", "apt-get install postgresql-client")
				project := need(t, "testdata/prisma", "the Prisma statements", "testdata")
				return runTool(t, project, baseEnv(), psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "name=rule_case",
					"-v", "migration="+filepath.Join(dir, "rule_case", "migration.sql"), "-f", "deploy.psql", url(db))
			},
		},
		{
			name:  "psql",
			words: map[string]string{"outside": "outside any transaction block", "separate": "transaction of its own", "backfill": "outside any transaction block", "later": "/* pgguard:allow"},
			write: func(t *testing.T, dir, sql string) {
				writeFile(t, filepath.Join(dir, "migration.sql"), sql+";\n")
			},
			run: func(t *testing.T, db, dir string) result {
				psql := lookPath(t, "psql", "apt-get install postgresql-client")
				return runTool(t, dir, baseEnv(), psql, "-X", "-v", "ON_ERROR_STOP=1", "-f", "migration.sql", url(db))
			},
		},
	}
}

// TestRefusalsInEachTool: each tool (sequelize-cli, knex, node-pg-migrate,
// TypeORM, golang-migrate, Django, Rails, Flyway, Liquibase, Prisma, psql)
// runs, through pgguard, a migration
// that each rule of ruleCases refuses, in one database per tool (the
// ledger dropped between cases), and prints the refusal: its message line
// carries the fix with the tool's words for the step it asks for, names no
// other tool, and the tool prints the recipe after "Safe recipe:".
func TestRefusalsInEachTool(t *testing.T) {
	t.Parallel()
	needPG(t)
	seen := &printed{byTool: map[string][]printedCase{}}
	t.Run("tools", func(t *testing.T) { refusalsInEachTool(t, seen) })
	if !t.Failed() {
		checkPrintedDocs(t, seen)
	}
}

// ruleRuns lets at most four tool runs of TestRefusalsInEachTool go at
// once: eleven JVMs, Rubies, Pythons and nodes starting together on a
// shared two-core machine took one Rails run past procTimeout.
var ruleRuns = make(chan struct{}, 4)

func refusalsInEachTool(t *testing.T, seen *printed) {
	for _, tl := range ruleTools(t) {
		t.Run(tl.name, func(t *testing.T) {
			t.Parallel()
			switch tl.name {
			case "django":
				if r := runTool(t, ".", baseEnv(), "/usr/bin/python3", "-c", "import django, psycopg2"); r.code != 0 {
					missing(t, "Django", nil, "apt-get install python3-django python3-psycopg2")
				}
			case "flyway", "liquibase":
				jvm(t)
			}
			db := database(t, "rules_"+tl.name)
			conn := direct(t, db)
			start := time.Now()
			for i, c := range ruleCases {
				if c.setup != "" {
					if _, err := conn.Exec(context.Background(), c.setup); err != nil {
						t.Fatal(err)
					}
				}
				dir := t.TempDir()
				sql := c.sql
				if tl.name == "psql" && c.psql != "" {
					sql = c.psql
				}
				tl.write(t, dir, sql)
				ruleRuns <- struct{}{}
				r := func() result {
					// Given back however the run ends: a tool that is not
					// installed skips the test from inside it.
					defer func() { <-ruleRuns }()
					return tl.run(t, db, dir)
				}()
				checkRuleRefusal(t, tl, c, r)
				seen.add(tl.name, c.rule, r.out, !tl.noRecipe && strings.Contains(r.out, "Safe recipe:"))
				for _, l := range tl.ledgers {
					if _, err := conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+l); err != nil {
						t.Fatal(err)
					}
				}
				if t.Failed() || testing.Verbose() {
					t.Logf("case %d (%s): %s", i, c.rule, r)
				}
			}
			t.Logf("%s: %d refusals in %v", tl.name, len(ruleCases), time.Since(start).Round(time.Millisecond))
		})
	}
}

// checkRuleRefusal checks what a tool printed for a refused case.
func checkRuleRefusal(t *testing.T, tl ruleTool, c ruleCase, r result) {
	t.Helper()
	if r.timedOut || r.code == 0 {
		t.Errorf("%s: the run was not refused: %s", c.rule, r)
		return
	}
	_, msg, ok := strings.Cut(r.out, "pgguard: "+c.rule+":")
	if !ok {
		t.Errorf("%s: %s did not print the refusal", c.rule, tl.name)
		return
	}
	msg, _, _ = strings.Cut(msg, "\n")
	_, fix, ok := strings.Cut(msg, " Fix: ")
	if !ok {
		t.Errorf("%s: the message %s printed carries no fix: %s", c.rule, tl.name, msg)
		return
	}
	w := tl.words[c.step]
	if c.same != "" {
		w = c.same
	}
	if !strings.Contains(fix, w) {
		t.Errorf("%s: the fix %s printed does not say %q (%s):\n  Fix: %s", c.rule, tl.name, w, c.step, fix)
	}
	if !tl.noRecipe && !strings.Contains(r.out, "Safe recipe:") {
		t.Errorf("%s: %s did not print the recipe", c.rule, tl.name)
	}
	// pgguard's words: the message, and the recipe's comment lines.
	var ours []string
	ours = append(ours, msg)
	for _, line := range strings.Split(r.out, "\n") {
		if l := strings.TrimLeft(line, " \t'\"+"); strings.HasPrefix(l, "-- ") {
			ours = append(ours, l)
		}
	}
	self := map[string]string{"typeorm": "TypeORM", "django": "Django", "rails": "Rails", "flyway": "Flyway", "liquibase": "Liquibase", "prisma": "Prisma"}
	for _, line := range ours {
		for _, other := range otherToolNames {
			if strings.EqualFold(other, tl.name) || other == self[tl.name] {
				continue
			}
			if strings.Contains(strings.ToLower(line), strings.ToLower(other)) {
				t.Errorf("%s: %s printed pgguard's words naming %s: %s", c.rule, tl.name, other, line)
			}
		}
	}
}
