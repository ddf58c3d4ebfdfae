package proxy

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgguard/pgguard/internal/observe"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// Red team (issue 21, round 2): the migration runs as the role that owns
// its tables, not a superuser and without pg_read_all_stats; the long
// transaction is another role's (a report). pgguard's look runs as the
// migration's role, and pg_stat_activity hides another role's
// xact_start, state and query from it: the holder, which pg_locks shows,
// is never old enough, and the ALTER TABLE queues behind it with the
// application behind the ALTER. The promise: it waits outside the queue
// (or is refused naming the holder), and no application statement takes
// 500 ms or more.
func TestRedteamLookAsAnUnprivilegedOwner(t *testing.T) {
	_, addr, obs := guardProxy(t, "lock_queue: {deadline: 10s, threshold: 300ms}\n", nil)
	ctx := context.Background()
	if err := pgExec("guard", "DROP TABLE IF EXISTS rt6_t", "CREATE TABLE rt6_t (id int PRIMARY KEY, v text)",
		"INSERT INTO rt6_t SELECT g, 'x' FROM generate_series(1, 100) g", "ALTER TABLE rt6_t OWNER TO "+pgtest.TrustUser,
		"GRANT CREATE ON SCHEMA public TO "+pgtest.TrustUser); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS rt6_t") })
	holder := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=nightly-report")
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "SELECT count(*) FROM rt6_t")
	defer commitAfter(holder, 2500*time.Millisecond)()
	time.Sleep(400 * time.Millisecond)
	slowest, appErr, stop := rtAppLoop(t, func() *pgx.Conn { c, _ := guardConn(t, addr, pgtest.SuperUser, ""); return c }, "SELECT v FROM rt6_t WHERE id = $1")
	migration, _ := guardConn(t, addr, pgtest.TrustUser, "")
	start := time.Now()
	_, err := migration.Exec(ctx, "ALTER TABLE rt6_t ADD COLUMN note text")
	took := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	stop()
	obs.mu.Lock()
	waits := slices.Clone(obs.queueWaits)
	obs.mu.Unlock()
	if err != nil {
		wantRefusal(t, err, "lock-queue")
	}
	if *appErr != nil || *slowest >= 500*time.Millisecond {
		t.Errorf("application statements: slowest %v, error %v; want none at 500ms or more (the migration took %v, err %v, waits outside the queue %v)", *slowest, *appErr, took, err, waits)
	}
	if len(waits) != 1 || waits[0] == observe.LockQueueSent {
		t.Errorf("waits outside the queue %v, want one (the migration took %v)", waits, took)
	}
}

// The same for two concurrent builds: pg_stat_progress_create_index hides
// another role's relid from the migration's role, so the other build on
// the same table is not seen, and the server cancels one of the two as a
// deadlock.
func TestRedteamConcurrentBuildAsAnUnprivilegedOwner(t *testing.T) {
	_, addr, _ := guardProxy(t, "lock_queue: {deadline: 20s, threshold: 300ms}\n", nil)
	ctx := context.Background()
	if err := pgExec("guard", "DROP TABLE IF EXISTS rt6_b", "CREATE TABLE rt6_b (id int PRIMARY KEY, v text)",
		"INSERT INTO rt6_b SELECT g, md5(g::text) FROM generate_series(1, 5000) g", "ALTER TABLE rt6_b OWNER TO "+pgtest.TrustUser); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS rt6_b") })
	holder := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "UPDATE rt6_b SET v = v WHERE id = 1")
	other := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=other-build")
	built := make(chan error, 1)
	go func() {
		_, err := other.Exec(ctx, "CREATE INDEX CONCURRENTLY rt6_b_a ON rt6_b (v)")
		built <- err
	}()
	time.Sleep(500 * time.Millisecond)
	defer commitAfter(holder, 1500*time.Millisecond)()
	conn, _ := guardConn(t, addr, pgtest.TrustUser, "")
	_, err := conn.Exec(ctx, "CREATE INDEX CONCURRENTLY rt6_b_b ON rt6_b (id, v)")
	if otherErr := <-built; otherErr != nil {
		t.Errorf("the other session's build: %v; want it never to be the victim (ours: %v)", otherErr, err)
	}
	if err != nil {
		wantRefusal(t, err, "lock-queue")
	}
}
