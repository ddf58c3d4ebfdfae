// Package oracle holds tests in which PostgreSQL is the judge of whether
// the policy was talked around: each case tries, through pgguard, to get
// an unsafe change past it by another route (a nested DO block, a function
// body called later, a trigger, EXPLAIN ANALYZE, PREPARE, a backfill in a
// transaction, a data change after an ALTER TABLE in the same
// transaction), and then asks the server directly whether the change
// happened. What pgguard says is not trusted; the server's state is.
package oracle
