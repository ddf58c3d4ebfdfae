// Package drivers holds pgguard's tests with real client drivers: node-postgres,
// pgjdbc, pgx, psycopg2 and psql each run allowed, warned, rewritten and refused
// DDL through a pgguard in front of a throwaway PostgreSQL, and after each one
// run queries whose results they check. A proxy that loses track of the
// protocol (an extra ReadyForQuery, a swallowed result) makes a driver return
// the wrong result, an error or hang; these tests catch all three. The package
// has no code of its own; see main_test.go and testdata/.
package drivers
