package policy

import "strings"

// Recipes and fixes say what to write in the tool behind the session. A
// rule writes them with placeholders, which the engine expands in that
// tool's terms (expandFix for the message's fix, expandHint for the
// recipe):
//
//	{outside}   how to run a statement alone, outside any transaction
//	{separate}  how to run a step in a transaction of its own, once the
//	            steps before it have committed (VALIDATE after NOT VALID)
//	{backfill}  how to repeat a batch until it changes 0 rows, each batch
//	            committed on its own; in a recipe, a line of its own that
//	            becomes the comment lines before the batch statement
//	{begin}, {commit}  lines of a recipe around the statements of one
//	            transaction: BEGIN; and COMMIT; with no tool known (plain
//	            SQL spells its transactions), nothing for a tool, which
//	            runs a migration's statements in the transaction it opens
//	{body}      a line before a statement with a $$ body (CREATE FUNCTION):
//	            for a tool that cuts a migration at its semicolons, how to
//	            keep the body whole; nothing for the others
const (
	StepOutside = "{outside}"
	// StepOutsideIndex is {outside} for an index build: Django and Rails
	// have an operation of their own for it.
	StepOutsideIndex = "{outside-index}"
	StepSeparate     = "{separate}"
	StepBackfill     = "{backfill}"
	StepBegin        = "{begin}"
	StepCommit       = "{commit}"
	phBody           = "{body}"
)

// toolStep is how a tool runs the steps of a recipe (see above).
type toolStep struct {
	// separate: a phrase, "in a migration of its own (...)".
	separate string
	// backfill: a phrase, "in a migration of its own ..., repeating the
	// batch ... until it changes 0 rows".
	backfill string
	// backfillHint: the comment lines before the batch of a recipe.
	backfillHint string
	// body: the comment line {body} becomes, "" for none.
	body string
}

// sqlFileBackfill is the backfill of a tool whose migrations are SQL
// files: a DO block that commits after each batch, which PostgreSQL 11+
// allows only outside a transaction block.
const sqlFileBackfill = "--   DO $$ BEGIN LOOP <the batch below> EXIT WHEN NOT FOUND; COMMIT; END LOOP; END $$;"

var toolSteps = map[Tool]toolStep{
	ToolUnknown: {
		separate: "in a transaction of its own (COMMIT what came before; then BEGIN; the statement; COMMIT;)",
		backfill: "outside any transaction block (no BEGIN around it, not psql -1/--single-transaction), so that each batch commits on its own, repeated until it changes 0 rows",
		backfillHint: "-- run the batch below outside any transaction block (no BEGIN around it, not psql -1/--single-transaction),\n" +
			"-- so that each batch commits on its own; repeat it until it changes 0 rows;\n" +
			"-- or, as one statement (psql -f, a migration file run without a transaction), this DO block, which commits after each batch:\n" +
			sqlFileBackfill,
	},
	ToolSequelize: {
		separate: "in a queryInterface call of its own, not inside queryInterface.sequelize.transaction() (sequelize-cli commits each statement on its own)",
		backfill: "in a migration of its own, not inside queryInterface.sequelize.transaction(), repeating the batch with queryInterface.sequelize.query until it changes 0 rows (sequelize-cli commits each one on its own)",
		backfillHint: "-- sequelize: in a migration of its own, not inside queryInterface.sequelize.transaction(), so that each batch commits on its own;\n" +
			"-- repeat the batch below until it changes 0 rows:\n" +
			"--   while ((await queryInterface.sequelize.query(`<the batch below>`))[1].rowCount > 0) {}",
	},
	ToolKnex: {
		separate: "in a migration file of its own with exports.config = { transaction: false } (knex otherwise runs all pending migrations in one transaction)",
		backfill: "in a migration file of its own with exports.config = { transaction: false }, repeating the batch with knex.raw until it changes 0 rows",
		backfillHint: "-- knex: a migration file of its own that runs without a transaction, so that each batch commits on its own;\n" +
			"-- repeat the batch below until it changes 0 rows:\n" +
			"--   exports.config = { transaction: false };\n" +
			"--   exports.up = async (knex) => { while ((await knex.raw(`<the batch below>`)).rowCount > 0) {} };",
	},
	ToolTypeORM: {
		separate: "in a migration of its own, run with typeorm migration:run -t each (the default -t all runs all pending migrations in one transaction)",
		backfill: "in a migration of its own with transaction = false (run with typeorm migration:run -t each), repeating the batch with queryRunner.query until it changes 0 rows",
		backfillHint: "-- TypeORM: a migration of its own with the class property  transaction = false  (run with  typeorm migration:run -t each),\n" +
			"-- so that each batch commits on its own; repeat the batch below until it changes 0 rows:\n" +
			"--   while ((await queryRunner.query(`<the batch below>`))[1] > 0) {}",
	},
	ToolNodePgMigrate: {
		separate: "in a migration of its own that calls pgm.noTransaction() (node-pg-migrate otherwise runs all pending migrations in one transaction)",
		backfill: "in a migration of its own that calls pgm.noTransaction(), repeating the batch with pgm.db.query until it changes 0 rows",
		backfillHint: "-- node-pg-migrate: a migration of its own that runs without a transaction, so that each batch commits on its own;\n" +
			"-- repeat the batch below until it changes 0 rows:\n" +
			"--   exports.up = async (pgm) => { pgm.noTransaction(); while ((await pgm.db.query(`<the batch below>`)).rowCount > 0) {} };",
	},
	ToolGolangMigrate: {
		separate: "in a migration file of its own (golang-migrate sends each file as one query, a transaction of its own)",
		backfill: "in a migration file of its own holding only a DO block that repeats the batch and COMMITs after each one until it changes 0 rows (PostgreSQL 11+)",
		backfillHint: "-- golang-migrate: a migration file of its own (NNN_name.up.sql) holding only this DO block, which commits after each batch:\n" +
			sqlFileBackfill,
	},
	ToolDjango: {
		separate: "in a migration of its own (Django runs each migration in a transaction of its own)",
		backfill: "in a migration of its own with atomic = False whose RunPython repeats the batch until it changes 0 rows",
		backfillHint: "-- Django: a migration of its own with  atomic = False, so that each batch commits on its own;\n" +
			"-- repeat the batch below until it changes 0 rows:\n" +
			"--   def backfill(apps, schema_editor):\n" +
			"--       with schema_editor.connection.cursor() as c:\n" +
			"--           while True:\n" +
			"--               c.execute(\"\"\"<the batch below>\"\"\")\n" +
			"--               if c.rowcount == 0:\n" +
			"--                   break\n" +
			"--   operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]",
	},
	ToolRails: {
		separate: "in a migration of its own (Rails runs each migration in a transaction of its own)",
		backfill: "in a migration of its own with disable_ddl_transaction! that repeats the batch with execute until it changes 0 rows",
		backfillHint: "-- Rails: a migration of its own that calls  disable_ddl_transaction!, so that each batch commits on its own;\n" +
			"-- repeat the batch below until it changes 0 rows:\n" +
			"--   def up\n" +
			"--     loop { break if execute(\"<the batch below>\").cmd_tuples.zero? }\n" +
			"--   end",
	},
	ToolFlyway: {
		separate: "in a versioned migration of its own (Flyway runs each migration in a transaction of its own)",
		backfill: "in a versioned migration of its own with executeInTransaction=false (its .sql.conf), holding only a DO block that repeats the batch and COMMITs after each one until it changes 0 rows (PostgreSQL 11+)",
		backfillHint: "-- Flyway: a versioned migration of its own with executeInTransaction=false in V<version>__<name>.sql.conf,\n" +
			"-- holding only this DO block, which commits after each batch:\n" +
			sqlFileBackfill,
	},
	ToolLiquibase: {
		separate: "in a changeset of its own (Liquibase runs each changeset in a transaction of its own)",
		backfill: "in a changeset of its own with runInTransaction:false splitStatements:false, holding only a DO block that repeats the batch and COMMITs after each one until it changes 0 rows (PostgreSQL 11+)",
		backfillHint: "-- Liquibase: a changeset of its own (--changeset author:id runInTransaction:false splitStatements:false)\n" +
			"-- holding only this DO block, which commits after each batch:\n" +
			sqlFileBackfill,
		// A formatted-SQL changeset is cut at each semicolon at a line's
		// end, inside a $$ body too ("Unterminated dollar quote",
		// liquibase/liquibase#5538).
		body: "-- Liquibase: these statements in a changeset with splitStatements:false (Liquibase otherwise cuts the function's body at its semicolons):",
	},
	ToolPrisma: {
		separate: "in a migration of its own (each migration.sql runs as one query, a transaction of its own)",
		backfill: "in a migration of its own whose migration.sql holds only a DO block that repeats the batch and COMMITs after each one until it changes 0 rows (PostgreSQL 11+)",
		backfillHint: "-- Prisma: a migration of its own whose migration.sql holds only this DO block, which commits after each batch:\n" +
			sqlFileBackfill,
	},
}

// OutsidePhrase is {outside} in a fix or a recipe's comment: how to run
// a statement that builds no index alone, outside a transaction.
func OutsidePhrase(tool Tool) string {
	if i, ok := toolIdioms[tool]; ok {
		return "alone and outside a transaction: " + i.fix
	}
	return "alone and outside any transaction block (no BEGIN around it, not psql -1/--single-transaction)"
}

// OutsideIndexPhrase is {outside-index}: OutsidePhrase for an index build
// (CREATE INDEX CONCURRENTLY), with the tool's own operation for it.
func OutsideIndexPhrase(tool Tool) string {
	if i, ok := toolIdioms[tool]; ok && i.indexFix != "" {
		return "alone and outside a transaction: " + i.indexFix
	}
	return OutsidePhrase(tool)
}

// expandFix expands a fix's placeholders in tool's terms.
func expandFix(fix string, tool Tool) string {
	if !strings.Contains(fix, "{") {
		return fix
	}
	s := toolSteps[tool]
	fix = strings.ReplaceAll(fix, StepOutsideIndex, OutsideIndexPhrase(tool))
	fix = strings.ReplaceAll(fix, StepOutside, OutsidePhrase(tool))
	fix = strings.ReplaceAll(fix, StepSeparate, s.separate)
	fix = strings.ReplaceAll(fix, StepBackfill, s.backfill)
	return expandAllow(expandTypes(expandNotValid(fix, tool), tool), tool)
}

// columnTypes is how the schema builder (or the model) of a tool declares
// a column of each type the prefer-* rules ask for; a tool whose
// migrations are SQL files has none, and its fix is the SQL type alone.
var columnTypes = map[Tool]map[string]string{
	ToolSequelize: {"jsonb": "DataTypes.JSONB", "text": "DataTypes.TEXT", "bigint": "DataTypes.BIGINT",
		"timestamptz": "DataTypes.DATE, which sequelize makes timestamp with time zone"},
	ToolKnex: {"jsonb": "table.jsonb(name)", "text": "table.text(name)", "bigint": "table.bigInteger(name), or table.bigIncrements(name) for a key",
		"timestamptz": "table.timestamp(name, { useTz: true })"},
	ToolTypeORM: {"jsonb": `@Column({ type: "jsonb" })`, "text": `@Column({ type: "text" })`,
		"bigint": `@Column({ type: "bigint" }), or @PrimaryGeneratedColumn({ type: "bigint" }) for a key`, "timestamptz": `@Column({ type: "timestamptz" })`},
	ToolNodePgMigrate: {"jsonb": "type: 'jsonb'", "text": "type: 'text'", "bigint": "type: 'bigint', or 'bigserial' for a key", "timestamptz": "type: 'timestamptz'"},
	ToolDjango: {"jsonb": "models.JSONField, which is jsonb on PostgreSQL", "text": "models.TextField",
		"bigint":      "models.BigIntegerField, or models.BigAutoField for a key (DEFAULT_AUTO_FIELD)",
		"timestamptz": "models.DateTimeField, which is timestamp with time zone on PostgreSQL"},
	ToolRails: {"jsonb": "t.jsonb", "text": "t.text", "bigint": "t.bigint (a primary key is bigint since Rails 5.1)", "timestamptz": "t.timestamptz (Rails 7+)"},
	ToolPrisma: {"jsonb": "Json, which is jsonb on PostgreSQL", "text": "String, which is text on PostgreSQL", "bigint": "BigInt",
		"timestamptz": "DateTime @db.Timestamptz"},
}

// notValidIdioms is how a tool adds a constraint NOT VALID and validates
// it later with operations of its own, by kind ({notvalid:fk},
// {notvalid:check} in a fix); a tool without them writes the SQL.
var notValidIdioms = map[Tool]map[string]string{
	ToolRails: {
		"fk":    "add_foreign_key ... validate: false, then validate_foreign_key",
		"check": "add_check_constraint ... validate: false, then validate_check_constraint",
	},
	ToolDjango: {
		"check": "AddConstraintNotValid, then ValidateConstraint (django.contrib.postgres.operations, Django 4.0+; before it, migrations.RunSQL)",
	},
}

// expandNotValid replaces each {notvalid:KIND} of a fix with the tool's
// operations for it, or nothing.
func expandNotValid(fix string, tool Tool) string {
	return expandEach(fix, "notvalid", func(kind string) string {
		if w, ok := notValidIdioms[tool][kind]; ok {
			return "; in " + toolNames[tool] + ": " + w
		}
		return ""
	})
}

// expandTypes replaces each {type:T} of a fix with how the session's tool
// declares a column of type T, or nothing.
func expandTypes(fix string, tool Tool) string {
	return expandEach(fix, "type", func(typ string) string {
		if w, ok := columnTypes[tool][typ]; ok {
			return " (in " + toolNames[tool] + ": " + w + ")"
		}
		return ""
	})
}

// expandHint expands a recipe's placeholders in tool's terms.
func expandHint(hint string, tool Tool) string {
	if !strings.Contains(hint, "{") {
		return hint
	}
	s := toolSteps[tool]
	lines := strings.Split(hint, "\n")
	out := lines[:0]
	for _, l := range lines {
		switch l {
		case StepBegin, StepCommit:
			if tool == ToolUnknown {
				out = append(out, strings.ToUpper(l[1:len(l)-1])+";")
			}
			continue
		case StepBackfill:
			out = append(out, s.backfillHint)
			continue
		case phBody:
			if s.body != "" {
				out = append(out, s.body)
			}
			continue
		}
		l = strings.ReplaceAll(l, StepOutsideIndex, OutsideIndexPhrase(tool))
		l = strings.ReplaceAll(l, StepOutside, OutsidePhrase(tool))
		separate := s.separate
		if tool == ToolUnknown {
			separate = "in a transaction of its own" // the recipe spells BEGIN; and COMMIT;
		}
		l = strings.ReplaceAll(l, StepSeparate, separate)
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// inTransaction is a recipe's statements that must be one transaction of
// their own: between BEGIN; and COMMIT; with no tool known.
func InOwnTransaction(stmts string) string {
	return StepBegin + "\n" + strings.TrimRight(stmts, "\n") + "\n" + StepCommit
}

// validateSeparately is the comment before a VALIDATE CONSTRAINT step.
const ValidateSeparately = "-- then, " + StepSeparate + "; it scans, but holds only SHARE UPDATE EXCLUSIVE, which lets reads and writes go on:\n"
