package enforce

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// The conflict table the look before queueing uses is PostgreSQL's: for
// each pair of modes, one session takes the first on a table and another
// tries the second with NOWAIT; it fails exactly when the table says the
// two conflict. covers (the modes that, held already, let the session take
// a mode without waiting) is checked the same way: with the covering mode
// held, no other session can hold a mode the wanted one conflicts with.
func TestConflictTableMatchesServer(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the PostgreSQL lock check in -short mode")
	}
	s := pgtest.Must(t, pgtest.Options{})
	if err := s.Exec("CREATE TABLE conflicts_t (id int)"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn := func() *pgx.Conn {
		c, err := pgx.Connect(ctx, s.DSN(pgtest.SuperUser, "postgres"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(ctx) })
		return c
	}
	a, b := conn(), conn()
	// tries reports whether b can take mode while a holds held.
	tries := func(held, mode string) bool {
		if _, err := a.Exec(ctx, "BEGIN; LOCK conflicts_t IN "+held+" MODE"); err != nil {
			t.Fatal(err)
		}
		defer a.Exec(ctx, "ROLLBACK")
		_, err := b.Exec(ctx, "BEGIN; LOCK conflicts_t IN "+mode+" MODE NOWAIT")
		b.Exec(ctx, "ROLLBACK")
		return err == nil
	}
	for _, held := range lockModes {
		for _, mode := range lockModes {
			if granted := tries(held, mode); granted == conflict(held, mode) {
				t.Errorf("%s held, %s granted=%v; the table says conflict=%v", held, mode, granted, conflict(held, mode))
			}
		}
	}
	for _, mode := range lockModes {
		for _, h := range covers(mode) {
			for _, other := range conflicts[mode] {
				if h != mode && tries(h, other) {
					t.Errorf("covers(%s) lists %s, but another session can take %s beside it", mode, h, other)
				}
			}
		}
		if !slices.Contains(covers(mode), mode) || !slices.Contains(covers(mode), lockModes[len(lockModes)-1]) {
			t.Errorf("covers(%s) = %v, want the mode itself and ACCESS EXCLUSIVE", mode, covers(mode))
		}
	}
}
