package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// Red team (issue 21, round 2): a migration's transaction block holds
// ACCESS EXCLUSIVE on rt3_a (its first ALTER) while its second ALTER waits
// outside the lock queue for a long reader of rt3_t. pgguard refuses at
// once when another session already waits for a lock the block holds
// (TestRedteamLookMissesStatements, "second ALTER of a block ..."), but it
// only finds out at its next look: once the backoff has grown to 1s, an
// application query of rt3_a that comes right after a look waits about
// 1s for the next one (and then for the client's ROLLBACK). The promise:
// no application statement takes 500 ms or more.
func TestRedteamHostageNoticedAtTheNextLookOnly(t *testing.T) {
	_, addr, _ := guardProxy(t, "lock_queue: {deadline: 20s, threshold: 300ms}\n", nil)
	ctx := context.Background()
	if err := pgExec("guard", "DROP TABLE IF EXISTS rt3_a, rt3_t",
		"CREATE TABLE rt3_a (id int PRIMARY KEY, v text)", "INSERT INTO rt3_a SELECT g, 'x' FROM generate_series(1, 100) g",
		"CREATE TABLE rt3_t (id int PRIMARY KEY, v text)", "INSERT INTO rt3_t SELECT g, 'x' FROM generate_series(1, 100) g"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS rt3_a, rt3_t") })
	holder := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=nightly-report")
	mustExec(t, holder, "BEGIN")
	mustExec(t, holder, "SELECT count(*) FROM rt3_t")
	defer commitAfter(holder, 9*time.Second)()
	time.Sleep(400 * time.Millisecond)

	migration, _ := guardConn(t, addr, pgtest.SuperUser, "")
	var pid int
	if err := migration.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	mustExec(t, migration, "BEGIN")
	mustExec(t, migration, "ALTER TABLE rt3_a ADD COLUMN note text")
	done := make(chan error, 1)
	go func() {
		_, err := migration.Exec(ctx, "ALTER TABLE rt3_t ADD COLUMN note text")
		migration.Exec(ctx, "ROLLBACK")
		done <- err
	}()
	// Wait for the backoff to reach its 1s cap (looks at about 0, 0.1,
	// 0.3, 0.7, 1.5, 2.5s), then for a look: each look changes the
	// migration backend's state_change.
	monitor := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	time.Sleep(1700 * time.Millisecond)
	stateChange := func() time.Time {
		var ts time.Time
		if err := monitor.QueryRow(ctx, "SELECT state_change FROM pg_stat_activity WHERE pid = $1", pid).Scan(&ts); err != nil {
			t.Fatal(err)
		}
		return ts
	}
	last := stateChange()
	for deadline := time.Now().Add(3 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatal("no look of pgguard's seen in 3s")
		}
		if ts := stateChange(); !ts.Equal(last) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	app := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=app")
	start := time.Now()
	var v string
	if err := app.QueryRow(ctx, "SELECT v FROM rt3_a WHERE id = 1").Scan(&v); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	err := <-done
	if took >= 500*time.Millisecond {
		t.Errorf("the application's read of rt3_a waited %v behind the migration's block (its ALTER of rt3_t: %v); want under 500ms", took, err)
	}
	if err != nil {
		wantRefusal(t, err, "lock-queue")
	}
}
