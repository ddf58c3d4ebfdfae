// Package sqltext is the policy's SQL front end that reads text without a
// parse tree: the lexer that follows PostgreSQL's scanner (scan.l), the
// statement splitter, the first-keyword classifier of the fast path, the
// client_encoding conversions, and the bounded call into pg_query's parser.
// It imports nothing of pgguard's: policy judges what it reads.
package sqltext
