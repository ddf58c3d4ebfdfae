// Package e2e holds pgguard's end-to-end tests with real clients from npm
// (sequelize-cli and node-postgres) against a real PostgreSQL. It has no
// code of its own; see sequelize_test.go and testdata/sequelize.
package e2e
