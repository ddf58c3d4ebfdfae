package proxy

import "testing"

// A function a migration calls runs now, as part of the statement that
// calls it: the ALTER TABLE in its body takes ACCESS EXCLUSIVE, so the
// call waits outside the lock queue for a long reader, as the ALTER would
// (and gets pgguard's lock_timeout), and the application never waits
// behind it. (In a session not known as a migration's, a plain SELECT f()
// is not parsed: docs/lock-queue.md, Limits.)
func TestCalledFunctionLooksBeforeQueueing(t *testing.T) {
	rtShapeCleanup(t)
	rtShapeLook(t, rtShapeCase{rtLookCase: rtLookCase{name: "ALTER TABLE in a function a migration calls", setup: []string{rtShapeTables,
		"CREATE OR REPLACE FUNCTION rt2_fn() RETURNS void LANGUAGE plpgsql AS $$ BEGIN ALTER TABLE rt2_t ADD COLUMN note text; END $$"},
		hold: "SELECT count(*) FROM rt2_t", app: "SELECT v FROM rt2_t WHERE id = $1", migration: []string{"SELECT rt2_fn()"},
		options: "application_name=knex"}})
}
