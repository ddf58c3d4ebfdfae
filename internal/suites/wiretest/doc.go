// Package wiretest holds the differential wire-protocol test of pgguard: it
// plays the same raw client bytes straight to PostgreSQL and through the
// proxy, and compares what comes back message by message. Everything lives
// in the test files; run it with go test ./internal/suites/wiretest/.
package wiretest
