package proxy

import (
	"context"
	"errors"
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

// TestRedteamNamesTheClientEncodingCannotWrite: a LATIN1 (or WIN1252)
// session names a table its encoding cannot spell with a Unicode escape,
// U&"rt20d_\8868_s", which the server reads (its own encoding is UTF8).
// pgguard's catalog question names the table as it read it, 表, which
// LATIN1 cannot write: the answer was unknown, the one-row table was
// taken for a large one, and SET NOT NULL on it was refused (nothing
// safe is refused). Straight to PostgreSQL it runs.
func TestRedteamNamesTheClientEncodingCannotWrite(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	if err := pgExec("guard", `DROP TABLE IF EXISTS "rt20d_表", "rt20d_表_s"`,
		`CREATE TABLE "rt20d_表" (a int)`, `INSERT INTO "rt20d_表" SELECT g FROM generate_series(1, 50000) g`, `ANALYZE "rt20d_表"`,
		`CREATE TABLE "rt20d_表_s" (a int)`, `INSERT INTO "rt20d_表_s" VALUES (1)`, `ANALYZE "rt20d_表_s"`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgExec("guard", `DROP TABLE IF EXISTS "rt20d_表", "rt20d_表_s"`) })
	for _, enc := range []string{"LATIN1", "WIN1252"} {
		t.Run(enc, func(t *testing.T) {
			cfg, err := pgconn.ParseConfig("postgres://" + pgtest.SuperUser + "@" + addr + "/guard?sslmode=disable")
			if err != nil {
				t.Fatal(err)
			}
			cfg.RuntimeParams["client_encoding"] = enc
			c, err := pgconn.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			if _, err := c.Exec(ctx, `BEGIN; ALTER TABLE U&"rt20d_\8868_s" ALTER COLUMN a SET NOT NULL; ROLLBACK`).ReadAll(); err != nil {
				t.Errorf("SET NOT NULL on the one row of U&\"rt20d_\\8868_s\": %v; want it run", err)
			}
			_, err = c.Exec(ctx, `BEGIN; ALTER TABLE U&"rt20d_\8868" ALTER COLUMN a SET NOT NULL; ROLLBACK`).ReadAll()
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "42501" {
				t.Errorf("SET NOT NULL on the 50,000 rows of U&\"rt20d_\\8868\": %v; want pgguard's refusal", err)
			}
			c.Exec(ctx, "ROLLBACK").ReadAll()
		})
	}
}
