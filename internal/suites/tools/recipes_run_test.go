package tools

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
	"github.com/pgguard/pgguard/policy/sqltext"
)

// recipeCase is a statement that the default policy refuses on big, and
// what its recipe must have done once run.
type recipeCase struct {
	rule, sql string
	// setup runs straight on the database first: data the recipe's
	// constraint needs (account 0 is no id of big, nor > 0).
	setup string
	// check is a query straight on the database that returns true once
	// the recipe did what it says.
	check string
	// choose, when set, makes the choices the recipe leaves to its user
	// (an alternative, a <value>) before it runs.
	choose func(hint string) string
}

// notNullChoice takes the recipe's second way (nullable, backfilled, then
// NOT NULL), with 'new' as the value existing rows get.
func notNullChoice(hint string) string {
	var out []string
	skip := false
	for _, l := range strings.Split(hint, "\n") {
		switch {
		case strings.HasPrefix(l, "-- either"):
			skip = true
			continue
		case strings.HasPrefix(l, "-- or add it nullable"):
			skip = false
		}
		if !skip {
			out = append(out, strings.ReplaceAll(l, "<value>", "'new'"))
		}
	}
	return strings.Join(out, "\n")
}

var recipeCases = []recipeCase{
	{rule: "large-dml", sql: "UPDATE big SET note = 'n'",
		check: "SELECT NOT EXISTS (SELECT FROM big WHERE note IS DISTINCT FROM 'n') AND count(*) = 300000 FROM big"},
	{rule: "add-foreign-key", sql: "ALTER TABLE big ADD CONSTRAINT big_account_fk FOREIGN KEY (account) REFERENCES big (id)",
		setup: "UPDATE big SET account = 1 WHERE account = 0",
		check: "SELECT convalidated AND contype = 'f' FROM pg_constraint WHERE conname = 'big_account_fk'"},
	{rule: "add-check-constraint", sql: "ALTER TABLE big ADD CONSTRAINT big_account_positive CHECK (account > 0)",
		setup: "UPDATE big SET account = 1 WHERE account = 0",
		check: "SELECT convalidated AND contype = 'c' FROM pg_constraint WHERE conname = 'big_account_positive'"},
	{rule: "add-unique-constraint", sql: "ALTER TABLE big ADD CONSTRAINT big_note_key UNIQUE (note)",
		check: "SELECT c.contype = 'u' AND i.indisvalid AND i.indisunique FROM pg_constraint c JOIN pg_index i ON i.indexrelid = c.conindid WHERE c.conname = 'big_note_key'"},
	{rule: "set-not-null", sql: "ALTER TABLE big ALTER COLUMN note SET NOT NULL",
		check: "SELECT attnotnull AND NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'big_note_not_null') FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'note'"},
	{rule: "add-column-volatile-default", sql: "ALTER TABLE big ADD COLUMN token uuid DEFAULT gen_random_uuid()",
		check: "SELECT NOT EXISTS (SELECT FROM big WHERE token IS NULL) AND count(DISTINCT token) = 300000 " +
			"AND (SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE a.attrelid = 'big'::regclass AND a.attname = 'token') = 'gen_random_uuid()' FROM big"},
	{rule: "create-index", sql: "CREATE INDEX big_note_idx ON big (note)",
		check: "SELECT indisvalid AND indisready FROM pg_index WHERE indexrelid = 'big_note_idx'::regclass"},
	// A new column kept in step by a trigger, backfilled, swapped in: the
	// values kept, the type bigint, the trigger and its function gone.
	{rule: "alter-column-type", sql: "ALTER TABLE big ALTER COLUMN account TYPE bigint",
		check: "SELECT (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'account') = 'bigint' " +
			"AND NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'big'::regclass AND NOT tgisinternal) AND NOT EXISTS (SELECT FROM pg_proc WHERE proname = 'big_account_new_sync') " +
			"AND count(*) = 300000 AND bool_and(account = id % 1000) FROM big"},
	{rule: "add-column-not-null-without-default", sql: "ALTER TABLE big ADD COLUMN status text NOT NULL", choose: notNullChoice,
		check: "SELECT (SELECT attnotnull FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'status') " +
			"AND NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'big_status_not_null') AND count(*) FILTER (WHERE status = 'new') = 300000 FROM big"},
	{rule: "truncate", sql: "TRUNCATE big", check: "SELECT count(*) = 0 FROM big"},
	// big attached as the partition of a new table: the CHECK that lets
	// ATTACH skip its scan, validated, then the ATTACH, then the CHECK
	// dropped.
	{rule: "attach-partition", sql: "ALTER TABLE big_by_id ATTACH PARTITION big FOR VALUES FROM (1) TO (1000000)",
		setup: "CREATE TABLE big_by_id (LIKE big) PARTITION BY RANGE (id)",
		check: "SELECT relispartition AND NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'big_partition_bound') FROM pg_class WHERE oid = 'big'::regclass"},
}

// recipeStep is one unit of a recipe: what a tool runs as one migration
// (one file, one changeset), or plain SQL's statements between two
// comment blocks that start a new step.
type recipeStep struct {
	sql string
	// loop is the DO block the recipe gives for a backfill: sql is then
	// its batch.
	loop string
	// repeat: the recipe says to repeat the batch until it changes 0 rows.
	repeat bool
	// note is the step's comment lines: the block before it and those
	// between its statements.
	note string
}

// annotated: the recipe says to run the step with a pgguard:allow
// annotation (alter-column-type's swap: DROP COLUMN, RENAME COLUMN).
func (s recipeStep) annotated() bool {
	return strings.Contains(s.note, "with a pgguard:allow annotation")
}

// splitAnnotated splits off the last steps of a recipe when it says to run
// them with a pgguard:allow annotation.
func splitAnnotated(t *testing.T, steps []recipeStep) (through, annotated []recipeStep) {
	t.Helper()
	for i, s := range steps {
		if s.annotated() {
			for _, a := range steps[i:] {
				if !a.annotated() {
					t.Fatalf("a step after the annotated ones: %s", a.sql)
				}
			}
			return steps[:i], steps[i:]
		}
	}
	return steps, nil
}

// runAnnotated runs the steps that the recipe says to run with a
// pgguard:allow annotation straight on the database: the suite's pgguard
// lets no role annotate (TestPsqlAnnotation), as a deployment lets only the
// roles it names.
func runAnnotated(t *testing.T, db string, steps []recipeStep) {
	t.Helper()
	if len(steps) == 0 {
		return
	}
	conn := direct(t, db)
	for _, s := range steps {
		if _, err := conn.Exec(context.Background(), s.sql); err != nil {
			t.Fatalf("%s\nfailed: %v", s.sql, err)
		}
	}
}

// recipeSteps reads the SQL a recipe tells its user to run: the lines
// that are not comments, in steps. A comment block that says "then" or
// "of its own" starts a new step; a comment line "--   DO $$ ... <the
// batch below> ..." is the DO block the batch that follows goes in.
func recipeSteps(hint string) []recipeStep {
	var steps []recipeStep
	cur, inComment, boundary, loop, repeat, note := recipeStep{}, false, false, "", false, ""
	flush := func() {
		if strings.TrimSpace(cur.sql) != "" {
			steps = append(steps, cur)
		}
		cur = recipeStep{}
	}
	for _, l := range strings.Split(hint, "\n") {
		if strings.HasPrefix(l, "--") {
			if !inComment {
				boundary, loop, repeat, note = false, "", false, ""
			}
			inComment = true
			note += l + "\n"
			c := strings.TrimSpace(strings.TrimPrefix(l, "--"))
			if strings.HasPrefix(c, "then") || strings.Contains(c, "of its own") || strings.HasPrefix(c, "or,") {
				boundary = true
			}
			if strings.Contains(c, "until it changes 0 rows") {
				repeat = true
			}
			if strings.HasPrefix(c, "DO $$") && strings.Contains(c, "<the batch below>") {
				loop = c
			}
			continue
		}
		if inComment && (boundary || loop != "" || repeat) {
			flush()
			cur.loop, cur.repeat = loop, repeat
		}
		if inComment {
			cur.note += note
		}
		inComment = false
		cur.sql += l + "\n"
	}
	flush()
	return steps
}

// doBlock is a backfill step as the DO block its recipe gives.
func (s recipeStep) doBlock() string {
	return strings.Replace(s.loop, "<the batch below>", strings.TrimSpace(s.sql), 1)
}

// refusal sends sql as one simple Query through pgguard on a session
// whose application_name is app, and returns the ErrorResponse.
func refusal(t *testing.T, db, app, sql string) *pgconn.PgError {
	t.Helper()
	ctx := context.Background()
	conn := recipeConn(t, db, app)
	defer conn.Close(ctx)
	if strings.HasPrefix(sql, "CREATE INDEX") {
		// Alone in its query, pgguard builds it CONCURRENTLY: the refusal
		// comes inside a transaction.
		if _, err := conn.Exec(ctx, "BEGIN").ReadAll(); err != nil {
			t.Fatal(err)
		}
	}
	_, err := conn.Exec(ctx, sql).ReadAll()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || !strings.HasPrefix(pe.Message, "pgguard: ") {
		t.Fatalf("%s (as %q) was not refused: %v", sql, app, err)
	}
	return pe
}

func recipeConn(t *testing.T, db, app string) *pgconn.PgConn {
	t.Helper()
	u := url(db)
	if app != "" {
		u += "&application_name=" + app
	}
	conn, err := pgconn.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// recipeTool is how a tool's user runs the steps of a recipe.
type recipeTool struct {
	name, app string
	run       func(t *testing.T, db string, steps []recipeStep)
}

// simple runs sql as one simple Query (a migration file of golang-migrate
// or Prisma: with several statements, one implicit transaction).
func simple(t *testing.T, conn *pgconn.PgConn, sql string) []pgconn.CommandTag {
	t.Helper()
	res, err := conn.Exec(context.Background(), sql).ReadAll()
	if err != nil {
		t.Fatalf("%s\nfailed: %v", sql, err)
	}
	var tags []pgconn.CommandTag
	for _, r := range res {
		tags = append(tags, r.CommandTag)
	}
	return tags
}

// extended runs one statement as pgjdbc does: Parse, Bind, Execute, Sync.
func extended(t *testing.T, conn *pgconn.PgConn, sql string) {
	t.Helper()
	if _, err := conn.ExecParams(context.Background(), sql, nil, nil, nil, nil).Close(); err != nil {
		t.Fatalf("%s\nfailed: %v", sql, err)
	}
}

func statements(sql string) []string {
	var out []string
	for _, s := range sqltext.Split(sql) {
		out = append(out, s.Text)
	}
	return out
}

// fileTool runs each step as one migration file: one simple Query, a
// backfill's as its DO block.
func fileTool(name string) recipeTool {
	return recipeTool{name: name, app: name, run: func(t *testing.T, db string, steps []recipeStep) {
		conn := recipeConn(t, db, name)
		defer conn.Close(context.Background())
		for _, s := range steps {
			sql := s.sql
			if s.loop != "" {
				sql = s.doBlock()
			}
			simple(t, conn, sql)
		}
	}}
}

// jvmTool runs each step as a changeset or versioned migration through
// pgjdbc: one in a transaction (BEGIN, each statement, COMMIT), a
// backfill's DO block or a CONCURRENTLY statement non-transactional
// (executeInTransaction=false, runInTransaction:false), in autocommit.
func jvmTool(name string) recipeTool {
	return recipeTool{name: name, app: name, run: func(t *testing.T, db string, steps []recipeStep) {
		conn := recipeConn(t, db, name)
		defer conn.Close(context.Background())
		for _, s := range steps {
			switch {
			case s.loop != "":
				extended(t, conn, s.doBlock())
			case strings.Contains(s.sql, "CONCURRENTLY"):
				for _, st := range statements(s.sql) {
					extended(t, conn, st)
				}
			default:
				simple(t, conn, "BEGIN")
				for _, st := range statements(s.sql) {
					extended(t, conn, st)
				}
				simple(t, conn, "COMMIT")
			}
		}
	}}
}

// nonTransactional: a step the recipe runs outside a transaction (a
// backfill's DO block, a CONCURRENTLY statement).
func (s recipeStep) nonTransactional() bool {
	return s.loop != "" || strings.Contains(s.sql, "CONCURRENTLY")
}

// text is the step as its user writes it in a migration: a backfill as
// its DO block.
func (s recipeStep) text() string {
	if s.loop != "" {
		return s.doBlock() + "\n"
	}
	return s.sql
}

// migrateCLI writes each step as a migration file of golang-migrate's CLI
// and runs migrate up: each file one query.
func migrateCLI() recipeTool {
	return recipeTool{name: "golang-migrate-cli", app: "golang-migrate", run: func(t *testing.T, db string, steps []recipeStep) {
		bin, _ := filepath.Abs(need(t, migrateBin, "golang-migrate", migrateInstall))
		dir := t.TempDir()
		for i, s := range steps {
			writeFile(t, filepath.Join(dir, fmt.Sprintf("%d_step.up.sql", i+1)), s.text())
		}
		if r := runTool(t, dir, baseEnv(), bin, "-path", ".", "-database", url(db), "up"); r.code != 0 {
			t.Fatalf("%s", r)
		}
	}}
}

// prismaDeployRig writes each step as a migration.sql of its own and runs
// testdata/prisma/deploy.psql (what prisma migrate deploy sends) on each,
// in order: the migration.sql as one query.
func prismaDeployRig() recipeTool {
	return recipeTool{name: "prisma-deploy", app: "prisma", run: func(t *testing.T, db string, steps []recipeStep) {
		psql := lookPath(t, "psql", "apt-get install postgresql-client")
		project := need(t, "testdata/prisma", "the Prisma statements", "testdata")
		dir := t.TempDir()
		for i, s := range steps {
			name := fmt.Sprintf("%d_step", i+1)
			migration := filepath.Join(dir, name, "migration.sql")
			writeFile(t, migration, s.text())
			r := runTool(t, project, baseEnv(), psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "name="+name,
				"-v", "migration="+migration, "-f", "deploy.psql", url(db))
			if r.code != 0 {
				t.Fatalf("%s\n%s", s.text(), r)
			}
		}
	}}
}

// flywayCLI writes each step as a versioned migration, with
// executeInTransaction=false in its .sql.conf for a step outside a
// transaction, and runs Flyway with -postgresql.transactional.lock=false,
// as the recipes say.
func flywayCLI() recipeTool {
	return recipeTool{name: "flyway-cli", app: "flyway", run: func(t *testing.T, db string, steps []recipeStep) {
		dir := t.TempDir()
		for i, s := range steps {
			name := filepath.Join(dir, fmt.Sprintf("V%d__step.sql", i+1))
			writeFile(t, name, s.text())
			if s.nonTransactional() {
				writeFile(t, name+".conf", "executeInTransaction=false\n")
			}
		}
		env := baseEnv("FLYWAY_URL="+jdbcURL(db, ""), "FLYWAY_USER="+pgtest.SuperUser, "FLYWAY_PASSWORD="+pgtest.Password)
		if r := runJVM(t, env, "FlywayRun", "-locations=filesystem:"+dir, "-postgresql.transactional.lock=false", "migrate"); r.code != 0 {
			t.Fatalf("%s", r)
		}
	}}
}

// liquibaseCLI writes each step as a changeset of a formatted-SQL
// changelog, runInTransaction:false for a step outside a transaction
// (and splitStatements:false for a DO block, or where the recipe says so:
// a function's body), and runs liquibase update.
func liquibaseCLI() recipeTool {
	return recipeTool{name: "liquibase-cli", app: "liquibase", run: func(t *testing.T, db string, steps []recipeStep) {
		var b strings.Builder
		b.WriteString("--liquibase formatted sql\n")
		for i, s := range steps {
			fmt.Fprintf(&b, "\n--changeset app:step%d", i+1)
			if s.nonTransactional() {
				b.WriteString(" runInTransaction:false")
			}
			if s.loop != "" || strings.Contains(s.note, "splitStatements:false") {
				b.WriteString(" splitStatements:false")
			}
			b.WriteString("\n" + s.text())
		}
		changelog := filepath.Join(t.TempDir(), "changelog.sql")
		writeFile(t, changelog, b.String())
		env := baseEnv("LIQUIBASE_COMMAND_URL="+jdbcURL(db, ""), "LIQUIBASE_COMMAND_USERNAME="+pgtest.SuperUser,
			"LIQUIBASE_COMMAND_PASSWORD="+pgtest.Password)
		if r := runJVM(t, env, "LiquibaseRun", "--changelog-file="+changelog, "--changelog-lock-poll-rate=1", "update"); r.code != 0 {
			t.Fatalf("%s\n%s", b.String(), r)
		}
	}}
}

// plainTool runs each statement as a Query of its own in autocommit, the
// recipe's BEGIN; and COMMIT; with them; a backfill's batch is repeated
// until it changes 0 rows, or (doBlock) run as the recipe's DO block.
func plainTool(name string, doBlock bool) recipeTool {
	return recipeTool{name: name, run: func(t *testing.T, db string, steps []recipeStep) {
		conn := recipeConn(t, db, "")
		defer conn.Close(context.Background())
		for _, s := range steps {
			if s.loop != "" && doBlock {
				simple(t, conn, s.doBlock())
				continue
			}
			for _, st := range statements(s.sql) {
				if !s.repeat {
					simple(t, conn, st)
					continue
				}
				for n := 0; ; n++ {
					if n > 100 {
						t.Fatalf("the batch still changed rows after %d runs: %s", n, st)
					}
					if simple(t, conn, st)[0].RowsAffected() == 0 {
						break
					}
				}
			}
		}
	}}
}

// psqlTool writes the steps to one file, a backfill as its DO block, and
// runs psql -f on it.
func psqlTool() recipeTool {
	return recipeTool{name: "psql", app: "psql", run: func(t *testing.T, db string, steps []recipeStep) {
		var b strings.Builder
		for _, s := range steps {
			if s.loop != "" {
				b.WriteString(s.doBlock() + "\n")
			} else {
				b.WriteString(s.sql)
			}
		}
		if r := psqlFile(t, db, b.String()); r.code != 0 {
			t.Fatalf("psql -f on\n%s\n%s", b.String(), r)
		}
	}}
}

// TestRecipesRun: the recipe of each refusal in recipeCases, as pgguard
// prints it to a session of each tool (recognised by application_name;
// psql and plain SQL get the unknown tool's), is taken from the
// ErrorResponse's hint and run through pgguard the way that tool runs
// migrations, on a fresh copy of big: pgguard refuses none of it, the
// server runs all of it, and the change is made (rows backfilled,
// constraint VALID, index valid, column NOT NULL).
func TestRecipesRun(t *testing.T) {
	t.Parallel()
	needPG(t)
	tools := []recipeTool{
		fileTool("golang-migrate"), fileTool("prisma"), jvmTool("flyway"), jvmTool("liquibase"),
		psqlTool(), plainTool("none", false), plainTool("none-do", true),
		migrateCLI(), prismaDeployRig(), flywayCLI(), liquibaseCLI(),
	}
	for _, tl := range tools {
		t.Run(tl.name, func(t *testing.T) {
			t.Parallel()
			switch tl.name {
			case "psql":
				lookPath(t, "psql", "apt-get install postgresql-client")
			case "flyway-cli", "liquibase-cli":
				jvm(t)
			}
			for _, c := range recipeCases {
				t.Run(c.rule, func(t *testing.T) {
					runRecipe(t, tl, c, database(t, "recipe_"+tl.name), bigRows)
				})
			}
		})
	}
}

// runRecipe refuses c's statement on db through pgguard, runs the recipe
// of the refusal with tl, and checks that it did what it says, on a big of
// rows rows.
func runRecipe(t *testing.T, tl recipeTool, c recipeCase, db string, rows int) {
	t.Helper()
	conn := direct(t, db)
	if c.setup != "" {
		if _, err := conn.Exec(context.Background(), c.setup); err != nil {
			t.Fatal(err)
		}
	}
	pe := refusal(t, db, tl.app, c.sql)
	if !strings.HasPrefix(pe.Message, "pgguard: "+c.rule+":") {
		t.Fatalf("refused by another rule: %s", pe.Message)
	}
	if c.choose != nil {
		pe.Hint = c.choose(pe.Hint)
	}
	steps := recipeSteps(pe.Hint)
	if len(steps) == 0 {
		t.Fatalf("no SQL in the recipe:\n%s", pe.Hint)
	}
	if tl.name == "none-do" && !hasLoop(steps) {
		return // only a backfill's recipe has a DO block; "none" ran this one
	}
	t.Logf("recipe:\n%s", pe.Hint)
	steps, annotated := splitAnnotated(t, steps)
	tl.run(t, db, steps)
	runAnnotated(t, db, annotated)
	check := strings.ReplaceAll(c.check, strconv.Itoa(bigRows), strconv.Itoa(rows))
	var ok bool
	if err := conn.QueryRow(context.Background(), check).Scan(&ok); err != nil || !ok {
		t.Fatalf("the recipe ran but did not do what it says (%s: %v, %v):\n%s", check, ok, err, pe.Hint)
	}
}

func hasLoop(steps []recipeStep) bool {
	for _, s := range steps {
		if s.loop != "" {
			return true
		}
	}
	return false
}

// backfillSnippet is the code a node tool's backfill recipe gives (the
// comment lines after "until it changes 0 rows:", without "--   "), with
// the recipe's batch in place of <the batch below>.
func backfillSnippet(t *testing.T, hint string) string {
	t.Helper()
	var code []string
	batch, in := "", false
	for _, l := range strings.Split(hint, "\n") {
		switch {
		case strings.HasPrefix(l, "--") && strings.Contains(l, "until it changes 0 rows:"):
			in = true
		case in && strings.HasPrefix(l, "--   "):
			code = append(code, strings.TrimPrefix(l, "--   "))
		case strings.HasPrefix(l, "--"):
			in = false
		case strings.TrimSpace(l) != "":
			batch = strings.TrimSpace(l)
		}
	}
	if len(code) == 0 || batch == "" {
		t.Fatalf("no backfill code in the recipe:\n%s", hint)
	}
	return strings.ReplaceAll(strings.Join(code, "\n"), "<the batch below>", batch)
}

// TestRecipesRunNode: the backfill loop that large-dml's recipe gives each
// tool whose migrations are code (knex.raw(...).rowCount,
// pgm.db.query(...).rowCount, queryRunner.query(...)[1], sequelize's
// query(...)[1].rowCount, Django's RunPython with cursor.rowcount, Rails'
// execute(...).cmd_tuples), copied into a real migration of that tool,
// run by the tool through pgguard:
// pgguard refuses none of its batches, the loop ends, and every row is
// updated. A snippet that reads the wrong field of the library's result
// either never loops (rows left) or never ends (the run times out).
func TestRecipesRunNode(t *testing.T) {
	t.Parallel()
	needPG(t)
	// How each tool's migration file wraps the recipe's code.
	files := map[string]func(snippet string) (name, text string){
		"knex": func(s string) (string, string) {
			return "20260101000001_backfill.js", s + "\nexports.down = async () => {};\n"
		},
		"node-pg-migrate": func(s string) (string, string) {
			return "1767225600001_backfill.js", s + "\nexports.down = () => {};\n"
		},
		"typeorm": func(s string) (string, string) {
			return "1767225600001-Backfill.js", "module.exports = class Backfill1767225600001 {\n  name = 'Backfill1767225600001';\n  transaction = false;\n" +
				"  async up(queryRunner) {\n" + s + "\n  }\n  async down() {}\n};\n"
		},
		"sequelize": func(s string) (string, string) {
			return "20260101000001-backfill.js", "module.exports = {\n  up: async (queryInterface) => {\n" + s + "\n  },\n  down: async () => {},\n};\n"
		},
		// The recipe's function at the module's top level, its operations
		// in the Migration class, atomic = False as the recipe says.
		"django": func(s string) (string, string) {
			var fn, ops []string
			for _, l := range strings.Split(s, "\n") {
				if strings.HasPrefix(l, "operations") {
					ops = append(ops, "    "+l)
				} else {
					fn = append(fn, l)
				}
			}
			return filepath.Join("rule_case_migrations", "0001_backfill.py"), "from django.db import migrations\n\n\n" + strings.Join(fn, "\n") +
				"\n\n\nclass Migration(migrations.Migration):\n    atomic = False\n" + strings.Join(ops, "\n") + "\n"
		},
		// The recipe's def up in a migration that calls
		// disable_ddl_transaction!, as the recipe says.
		"rails": func(s string) (string, string) {
			return "20260101000001_backfill.rb", "class Backfill < ActiveRecord::Migration[6.1]\n  disable_ddl_transaction!\n\n  " +
				strings.ReplaceAll(s, "\n", "\n  ") + "\nend\n"
		},
	}
	for _, tl := range ruleTools(t) {
		file, ok := files[tl.name]
		if !ok {
			continue
		}
		t.Run(tl.name, func(t *testing.T) {
			t.Parallel()
			db := database(t, "recipe_node_"+tl.name)
			pe := refusal(t, db, tl.name, "UPDATE big SET note = 'n'")
			snippet := backfillSnippet(t, pe.Hint)
			name, text := file(snippet)
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, name), text)
			if tl.name == "django" {
				writeFile(t, filepath.Join(dir, filepath.Dir(name), "__init__.py"), "")
			}
			var r result
			if tl.name == "typeorm" {
				// The recipe: typeorm migration:run -t each.
				_, bin := nodeBin(t, "typeorm")
				project := need(t, filepath.Join(nodeDir, "typeorm"), "the TypeORM project", "testdata")
				r = runTool(t, project, baseEnv("DATABASE_URL="+url(db), "MIGRATIONS="+dir), bin, "migration:run", "-d", "datasource.js", "-t", "each")
			} else {
				r = tl.run(t, db, dir)
			}
			t.Logf("%s\n%s", text, r)
			if r.code != 0 || r.timedOut {
				t.Fatalf("the recipe's migration failed:\n%s\n%s", text, r)
			}
			var left int
			if err := direct(t, db).QueryRow(context.Background(), "SELECT count(*) FROM big WHERE note IS DISTINCT FROM 'n'").Scan(&left); err != nil {
				t.Fatal(err)
			}
			if left != 0 {
				t.Fatalf("%d rows not backfilled by:\n%s\n%s", left, text, r)
			}
		})
	}
}

// nodeStepFile is one step of a recipe as a migration file of a node tool
// (the i-th, so that the tool runs them in order), without a transaction
// when noTx.
type nodeStepFile func(i int, sql string, noTx bool) (name, text string)

// nodeStepFiles: how each node tool's migration holds a recipe's step of
// raw SQL, and the words its recipe says a step needs no transaction with.
var nodeStepFiles = map[string]struct {
	file   nodeStepFile
	noTxIn string
}{
	"knex": {noTxIn: "exports.config = { transaction: false }", file: func(i int, sql string, noTx bool) (string, string) {
		text := "exports.up = (knex) => knex.raw(`" + sql + "`);\nexports.down = async () => {};\n"
		if noTx {
			text = "exports.config = { transaction: false };\n" + text
		}
		return fmt.Sprintf("202601010%05d_step.js", i), text
	}},
	"node-pg-migrate": {noTxIn: "pgm.noTransaction()", file: func(i int, sql string, noTx bool) (string, string) {
		body := "pgm.sql(`" + sql + "`);"
		if noTx {
			body = "pgm.noTransaction(); " + body
		}
		return fmt.Sprintf("17672256%05d_step.js", i), "exports.up = (pgm) => { " + body + " };\nexports.down = () => {};\n"
	}},
	"typeorm": {noTxIn: "transaction = false", file: func(i int, sql string, noTx bool) (string, string) {
		class := fmt.Sprintf("Step17672256%05d", i)
		prop := ""
		if noTx {
			prop = "  transaction = false;\n"
		}
		return fmt.Sprintf("17672256%05d-Step.js", i), "module.exports = class " + class + " {\n  name = '" + class + "';\n" + prop +
			"  async up(queryRunner) { await queryRunner.query(`" + sql + "`); }\n  async down() {}\n};\n"
	}},
	// sequelize-cli wraps no migration in a transaction.
	"sequelize": {file: func(i int, sql string, noTx bool) (string, string) {
		return fmt.Sprintf("202601010%05d-step.js", i), "module.exports = {\n  up: (queryInterface) => queryInterface.sequelize.query(`" + sql + "`),\n  down: async () => {},\n};\n"
	}},
}

// nodeStepCases are the recipes TestRecipesRunNodeSteps runs: those whose
// steps are SQL (a backfill's loop is code, which TestRecipesRunNode runs).
// attach-partition last: once attached, big is a partition.
var nodeStepCases = []string{"add-foreign-key", "add-check-constraint", "add-unique-constraint", "set-not-null", "create-index", "attach-partition"}

// TestRecipesRunNodeSteps: the constraint, index and attach recipes that
// pgguard prints to each node tool (sequelize-cli, knex, node-pg-migrate,
// TypeORM), each step written as a migration of its own, without a
// transaction where the recipe says so in the tool's words (or for
// CONCURRENTLY), run by the tool through pgguard (TypeORM with -t each, as
// its recipes say): pgguard refuses none of it and each change is made.
// The recipes of a tool run as one run of the tool over all their
// migrations, in one database: each refusal is taken first, then the
// migrations run, then each check.
func TestRecipesRunNodeSteps(t *testing.T) {
	t.Parallel()
	needPG(t)
	cases := map[string]recipeCase{}
	for _, c := range recipeCases {
		cases[c.rule] = c
	}
	for _, tl := range ruleTools(t) {
		nf, ok := nodeStepFiles[tl.name]
		if !ok {
			continue
		}
		t.Run(tl.name, func(t *testing.T) {
			t.Parallel()
			db := database(t, "recipe_steps_"+tl.name)
			conn := direct(t, db)
			dir := t.TempDir()
			var hints []string
			n := 0
			for _, rule := range nodeStepCases {
				c := cases[rule]
				if c.setup != "" {
					if _, err := conn.Exec(context.Background(), c.setup); err != nil {
						t.Fatal(err)
					}
				}
				pe := refusal(t, db, tl.name, c.sql)
				if !strings.HasPrefix(pe.Message, "pgguard: "+c.rule+":") {
					t.Fatalf("%s: refused by another rule: %s", rule, pe.Message)
				}
				hints = append(hints, pe.Hint)
				for _, s := range recipeSteps(pe.Hint) {
					if s.repeat || s.loop != "" {
						t.Fatalf("%s: a backfill in the recipe:\n%s", rule, pe.Hint)
					}
					n++
					noTx := s.nonTransactional() || nf.noTxIn != "" && strings.Contains(s.note, nf.noTxIn)
					name, text := nf.file(n, strings.TrimSpace(s.sql), noTx)
					writeFile(t, filepath.Join(dir, name), text)
				}
			}
			var r result
			if tl.name == "typeorm" {
				_, bin := nodeBin(t, "typeorm")
				project := need(t, filepath.Join(nodeDir, "typeorm"), "the TypeORM project", "testdata")
				r = runTool(t, project, baseEnv("DATABASE_URL="+url(db), "MIGRATIONS="+dir), bin, "migration:run", "-d", "datasource.js", "-t", "each")
			} else {
				r = tl.run(t, db, dir)
			}
			t.Logf("recipes:\n%s\n%s", strings.Join(hints, "\n\n"), r)
			if r.code != 0 || r.timedOut {
				t.Fatalf("the recipes' migrations failed:\n%s", r)
			}
			for i, rule := range nodeStepCases {
				var ok bool
				if err := conn.QueryRow(context.Background(), cases[rule].check).Scan(&ok); err != nil || !ok {
					t.Errorf("%s: the recipe ran but did not do what it says (%s: %v, %v):\n%s", rule, cases[rule].check, ok, err, hints[i])
				}
			}
		})
	}
}
