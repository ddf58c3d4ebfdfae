// Package tools holds pgguard's tests with real migration tools: knex,
// node-pg-migrate, TypeORM, golang-migrate, Django, Rails' ActiveRecord, and
// the statements Flyway, Liquibase and Prisma send, each running its own
// migrations through a pgguard in front of a throwaway PostgreSQL with a
// 300,000-row table. For every tool: everyday migrations pass untouched; the
// tool's default CREATE INDEX on the big table is refused with the fix in the
// tool's own terms (or rewritten where the tool runs it outside a
// transaction); the tool's concurrent way passes with a valid index; an
// unsafe type change and a volatile default are refused with the ledger and
// the schema unchanged; and two runs started together do what the tool
// does straight to PostgreSQL (wait for the other, or fail at once).
// sequelize-cli is covered by internal/suites/e2e. The package has no code of its
// own; see main_test.go and testdata/.
package tools
