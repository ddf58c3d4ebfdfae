package policy

import (
	"strings"
	"testing"
)

// Each tool's first statements that name its ledger, as the tools send
// them (taken from their runs through pgguard in internal/suites/tools).
func TestToolSense(t *testing.T) {
	// Not parallel: AllocsPerRun.
	cases := []struct {
		want  Tool
		stmts []string
	}{
		{ToolSequelize, []string{`SELECT 1+1 AS result`, `CREATE TABLE IF NOT EXISTS "SequelizeMeta" ("name" VARCHAR(255) NOT NULL UNIQUE , PRIMARY KEY ("name"));`}},
		{ToolKnex, []string{`select * from information_schema.tables where table_name = $1 and table_schema = current_schema()`, `create table "knex_migrations" ("id" serial primary key, "name" varchar(255))`}},
		{ToolTypeORM, []string{`SELECT * FROM "information_schema"."tables" WHERE "table_schema" = 'public' AND "table_name" = 'migrations'`}},
		{ToolNodePgMigrate, []string{`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'pgmigrations'`}},
		{ToolGolangMigrate, []string{`SELECT COUNT(1) FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2 LIMIT 1`, `SELECT version, dirty FROM "public"."schema_migrations" LIMIT 1`, `TRUNCATE "public"."schema_migrations"`}},
		{ToolRails, []string{`SELECT "schema_migrations"."version" FROM "schema_migrations" ORDER BY "schema_migrations"."version" ASC`}},
		{ToolRails, []string{`CREATE TABLE "ar_internal_metadata" ("key" character varying NOT NULL PRIMARY KEY)`, `SELECT version, dirty FROM schema_migrations`}},
		{ToolDjango, []string{`SELECT "django_migrations"."id", "django_migrations"."app" FROM "django_migrations"`}},
		{ToolFlyway, []string{`SELECT "installed_rank","version" FROM "public"."flyway_schema_history" WHERE "installed_rank" > $1`}},
		// Flyway's migration connection never reads the history, but probes for RDS.
		{ToolFlyway, []string{`SELECT CURRENT_USER`, `SELECT rolname FROM pg_roles WHERE rolname ILIKE 'rds_superuser';`, `SET ROLE 'postgres'`}},
		{ToolLiquibase, []string{`SELECT rolname FROM pg_roles WHERE rolname ILIKE 'rds_superuser';`, `SELECT COUNT(*) FROM public.databasechangeloglock`}},
		{ToolLiquibase, []string{`SELECT COUNT(*) FROM public.databasechangeloglock`}},
		{ToolPrisma, []string{`SELECT id, checksum FROM "_prisma_migrations" ORDER BY started_at ASC`}},
		{ToolPrisma, []string{"-- what prisma sends before the migrations\nCREATE TABLE IF NOT EXISTS \"_prisma_migrations\" (id text)"}},
		// knex with its ledger renamed (knexfile migrations.tableName): its
		// "migrations" is not TypeORM's; its lock row says knex.
		{ToolKnex, []string{`select * from "migrations_lock"`, `select "name" from "migrations" order by "id" asc`,
			`update "migrations_lock" set "is_locked" = $1 where "is_locked" = $2`}},
		// node-pg-migrate with its ledger renamed: its advisory lock says so.
		{ToolNodePgMigrate, []string{`SELECT pg_try_advisory_lock(7241865325823964) AS "lockObtained"`, `SELECT name FROM "public"."migrations" ORDER BY run_on, id`}},
		{ToolNodePgMigrate, []string{`select pg_advisory_lock(42) as "lockObtained"`}},
		{ToolKnex, []string{`create table "schema_versions_lock" ("index" serial primary key, "is_locked" integer)`}},
		{ToolTypeORM, []string{`SELECT * FROM "migrations" "migrations" ORDER BY "id" DESC`}},
		{ToolUnknown, []string{`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'migrations'`,
			`SELECT name FROM "public"."migrations" ORDER BY run_on, id`}},
		{ToolRails, []string{`CREATE TABLE "schema_migrations" ("version" character varying NOT NULL PRIMARY KEY)`}},
		// Ecto's and dbmate's schema_migrations are not Rails'.
		{ToolUnknown, []string{`CREATE TABLE IF NOT EXISTS "schema_migrations" ("version" bigint, "inserted_at" timestamp(0), PRIMARY KEY ("version"))`,
			`SELECT s0."version"::bigint FROM "schema_migrations" AS s0`}},
		{ToolUnknown, []string{`select version from public.schema_migrations order by version desc`}},
		{ToolUnknown, []string{`SELECT * FROM knex_migrations_archive`, `SELECT 'my_migrations'`, `CREATE TABLE data_migrations (id int)`,
			"-- run the migrations first\nCREATE TABLE t (id int)", `COMMENT ON TABLE t IS 'tracks migrations'`}},
	}
	for _, c := range cases {
		var s ToolSense
		for _, q := range c.stmts {
			quiet, before := s.Quiet(q), s
			s.Observe(q)
			if quiet && (s.tool != before.tool || s.certain != before.certain) {
				t.Errorf("%q: Quiet said Observe would only count it, and it changed %+v to %+v", q, before, s)
			}
		}
		if s.Tool() != c.want {
			t.Errorf("%q: tool %q, want %q", c.stmts, s.Tool(), c.want)
		}
	}
	// It stops looking after ToolSenseStatements statements.
	var s ToolSense
	for i := 0; i < ToolSenseStatements; i++ {
		s.Observe("SELECT 1")
	}
	s.Observe(`SELECT * FROM "SequelizeMeta"`)
	if s.Tool() != ToolUnknown {
		t.Errorf("tool %q after %d statements, want none", s.Tool(), ToolSenseStatements)
	}
	if n := testing.AllocsPerRun(100, func() { var s ToolSense; s.Observe(`SELECT version, dirty FROM "public"."schema_migrations" LIMIT 1`) }); n != 0 {
		t.Errorf("Observe allocates %v times", n)
	}
}

func TestToolFromApplicationName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]Tool{
		"": ToolUnknown, "PostgreSQL JDBC Driver": ToolUnknown, "psql": ToolUnknown,
		"knex": ToolKnex, "billing Django migrate": ToolDjango, "node-pg-migrate": ToolNodePgMigrate,
		"Flyway by Redgate": ToolFlyway, "sequelize-cli": ToolSequelize, "golang-migrate": ToolGolangMigrate,
	} {
		if got := ToolFromApplicationName(name); got != want {
			t.Errorf("%q: %q, want %q", name, got, want)
		}
	}
}

func TestWaitsForAdvisoryLock(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]bool{
		`SELECT pg_advisory_lock($1)`:                                 true, // golang-migrate
		`select pg_advisory_lock(7241865325823964) as "lockObtained"`: true, // node-pg-migrate --lock-mode wait
		`SELECT pg_advisory_lock(72707369)`:                           true, // Prisma
		`SELECT PG_ADVISORY_XACT_LOCK(1)`:                             true,
		`SELECT pg_advisory_lock_shared(1)`:                           true,
		`SELECT pg_try_advisory_lock(1)`:                              false, // Rails: never waits
		`SELECT pg_advisory_unlock($1)`:                               false,
		`SELECT pg_advisory_unlock_all()`:                             false,
		`SELECT 1`:                                                    false,
	} {
		if got := WaitsForAdvisoryLock(q); got != want {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
}

// A statement that only writes a migration tool's lock table waits only
// for another run of the tool; anything that reads another table or calls
// a function may wait for something else.
func TestWritesOnlyToolLockTable(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]bool{
		`update "knex_migrations_lock" set "is_locked" = $1 where "is_locked" = $2`:                        true, // knex _lockMigrations
		`update "public"."knex_migrations_lock" set "is_locked" = $1`:                                      true, // knex _freeLock
		`UPDATE databasechangeloglock SET LOCKED = TRUE, LOCKGRANTED = NOW(), LOCKEDBY = 'h' WHERE ID = 1`: true, // Liquibase
		`insert into "knex_migrations_lock" ("is_locked") values ($1)`:                                     true,
		`DELETE FROM databasechangeloglock`:                                                                true,
		`select * from "knex_migrations_lock"`:                                                             false,
		`UPDATE knex_migrations_lock SET is_locked = (SELECT count(*) FROM users)`:                         false,
		`UPDATE knex_migrations_lock SET is_locked = 1 FROM users`:                                         false,
		`UPDATE knex_migrations_lock SET is_locked = f()`:                                                  false,
		`WITH d AS (DELETE FROM users RETURNING 1) UPDATE knex_migrations_lock SET is_locked = 1`:          false,
		`INSERT INTO knex_migrations_lock SELECT * FROM users`:                                             false,
		`UPDATE knex_migrations_lock SET is_locked = 1; UPDATE users SET a = 1`:                            false,
		`UPDATE users SET note = 'knex_migrations_lock'`:                                                   false,
		`UPDATE knex_migrations SET name = 'x'`:                                                            false,
	} {
		if got := WritesOnlyToolLockTable(q); got != want {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
		if got := WaitsForToolLock(q); got != want {
			t.Errorf("WaitsForToolLock(%s): %v, want %v", q, got, want)
		}
	}
}

// Every tool has its idiom, and each names the tool.
func TestOutsideTransactionIdioms(t *testing.T) {
	t.Parallel()
	for _, tool := range Tools {
		i, ok := toolIdioms[tool]
		if !ok {
			t.Errorf("%s has no idiom", tool)
			continue
		}
		if i.fix == "" || !strings.HasPrefix(i.hint, "-- ") {
			t.Errorf("%s: fix %q, hint %q", tool, i.fix, i.hint)
		}
		if _, ok := IsLedgerTable(Table{Name: ledgerOf(tool)}); !ok {
			t.Errorf("%s has no ledger table", tool)
		}
	}
	if OutsideTransactionHintFor(ToolUnknown) != OutsideTransactionHint {
		t.Error("an unknown tool does not get the plain hint")
	}
}

func ledgerOf(tool Tool) string {
	for _, l := range ledgers {
		if l.tool == tool {
			return l.name
		}
	}
	return ""
}

// The ledger INSERTs the tools send (internal/suites/tools' server logs).
func TestRecordsMigration(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		sql  string
		want LedgerRecord
	}{
		{`INSERT INTO "SequelizeMeta" ("name") VALUES ($1) RETURNING "name";`, LedgerRecord{Tool: ToolSequelize, Param: 1}},
		{`insert into "knex_migrations" ("batch", "migration_time", "name") values ($1, $2, $3)`, LedgerRecord{Tool: ToolKnex, Param: 3}},
		{`INSERT INTO "migrations"("timestamp", "name") VALUES ($1, $2)`, LedgerRecord{Tool: ToolTypeORM, Param: 2}},
		{`INSERT INTO "public"."pgmigrations" (name, run_on) VALUES ('1767225600001_create_payees', NOW());`, LedgerRecord{Tool: ToolNodePgMigrate, Name: "1767225600001_create_payees"}},
		{`INSERT INTO "public"."schema_migrations" (version, dirty) VALUES ($1, $2)`, LedgerRecord{Tool: ToolGolangMigrate, Param: 1}},
		{`INSERT INTO "schema_migrations" ("version") VALUES ($1) RETURNING "version"`, LedgerRecord{Tool: ToolRails, Param: 1}},
		{`INSERT INTO "django_migrations" ("app", "name", "applied") VALUES ('shop', '0001_create_payees', '2026-11-30T10:00:00+00:00'::timestamptz) RETURNING "django_migrations"."id"`, LedgerRecord{Tool: ToolDjango, Name: "0001_create_payees"}},
		{`INSERT INTO "public"."flyway_schema_history" ("installed_rank", "version", "description", "type", "script", "checksum", "installed_by", "execution_time", "success") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, LedgerRecord{Tool: ToolFlyway, Param: 5}},
		{`INSERT INTO public.databasechangelog (ID, AUTHOR, FILENAME) VALUES ('2', 'app', 'db/changelog.sql')`, LedgerRecord{Tool: ToolLiquibase, Name: "2"}},
		// A name continued across a -- comment: one string to PostgreSQL.
		{"INSERT INTO \"public\".\"pgmigrations\" (name, run_on) VALUES ('1767225600001_' -- c\n'create_payees', NOW());", LedgerRecord{Tool: ToolNodePgMigrate, Name: "1767225600001_create_payees"}},
	} {
		got, ok := RecordsMigration(c.sql)
		if !ok || got != c.want {
			t.Errorf("%s: %+v %v, want %+v", c.sql, got, ok, c.want)
		}
	}
	for _, sql := range []string{`INSERT INTO payees (name) VALUES ('x')`, `UPDATE knex_migrations_lock SET is_locked = 1`,
		`SELECT name FROM "SequelizeMeta"`, `INSERT INTO knex_migrations_lock (is_locked) VALUES (0)`} {
		if got, ok := RecordsMigration(sql); ok {
			t.Errorf("%s: %+v, want no record", sql, got)
		}
	}
}

func TestAlreadyCommittedDetail(t *testing.T) {
	t.Parallel()
	if got := AlreadyCommittedDetail(nil); got != "" {
		t.Errorf("no statements: %q", got)
	}
	got := AlreadyCommittedDetail([]string{`ALTER TABLE "Accounts" ADD COLUMN "nickname" TEXT;`, "-- sequelize\nCREATE TABLE t (id int)"})
	want := "Already committed by this migration before it was refused, and not undone (the tool ran it without a transaction); undo them or make them re-runnable before running it again:\n" +
		"  1. ALTER TABLE \"Accounts\" ADD COLUMN \"nickname\" TEXT;\n  2. CREATE TABLE t (id int);"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
