package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestRedteamLookInClientEncoding: the look before queueing asks pg_locks
// about the statement's table by name (to_regclass('...')), as pgguard
// read the name: UTF-8. Its catalog questions are written in the
// session's client_encoding (sessionQuerier), the look's were not: in
// SJIS, EUC_JP or LATIN1 the bytes of "rt20d_表" (or "rt20d_é") name
// another relation, to_regclass finds none, the look sees no holder, and
// ALTER TABLE joins the lock queue behind the long reader (the
// application's statements on the table wait behind it until
// lock_timeout) instead of being refused naming the holder, as it is for
// a UTF8 session.
func TestRedteamLookInClientEncoding(t *testing.T) {
	_, addr, _ := guardProxy(t, "lock_queue: {deadline: 800ms, threshold: 200ms}\n", nil)
	ctx := context.Background()
	for _, c := range []struct{ enc, name string }{
		{"UTF8", "rt20d_表"},
		{"SJIS", "rt20d_表"},
		{"EUC_JP", "rt20d_表"},
		{"LATIN1", "rt20d_é"},
	} {
		t.Run(c.enc, func(t *testing.T) {
			q := `"` + c.name + `"`
			if err := pgExec("guard", "DROP TABLE IF EXISTS "+q, "CREATE TABLE "+q+" (id int)"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS "+q) })
			holder := connect(t, pg.DSN(pgtest.SuperUser, "guard")+"&application_name=nightly-report")
			mustExec(t, holder, "BEGIN")
			mustExec(t, holder, "SELECT count(*) FROM "+q)
			defer holder.Exec(ctx, "ROLLBACK")
			time.Sleep(300 * time.Millisecond)
			// The statement in the client's bytes, as the server spells
			// the name in that encoding.
			var b []byte
			if err := holder.QueryRow(ctx, "SELECT convert_to($1, $2)", q, c.enc).Scan(&b); err != nil {
				t.Fatal(err)
			}
			cfg, err := pgconn.ParseConfig("postgres://" + pgtest.SuperUser + "@" + addr + "/guard?sslmode=disable")
			if err != nil {
				t.Fatal(err)
			}
			cfg.RuntimeParams["client_encoding"] = c.enc
			migration, err := pgconn.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer migration.Close(ctx)
			_, err = migration.Exec(ctx, "ALTER TABLE "+string(b)+" ADD COLUMN note text").ReadAll()
			if err == nil {
				t.Fatal("ALTER TABLE ran behind the open reader")
			}
			wantRefusal(t, err, "lock-queue")
		})
	}
}
