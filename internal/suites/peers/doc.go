// Package peers runs other projects' own test suites through pgguard: a
// client's suite that passes against PostgreSQL must pass the same way
// through pgguard. Today that is pgx v5's suite, taken from the Go module
// cache at the version go.mod requires (pgx_test.go). The package has no code
// of its own.
package peers
