package proxy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestRedteamNamesInClientEncoding: a big table whose name is not ASCII,
// named by a session in another client_encoding than UTF-8. pgguard
// reads the statement converted to UTF-8, but asked the catalog about the
// name in those UTF-8 bytes on a connection the server reads in the
// client's encoding: in SJIS the bytes of 表 in UTF-8 are other valid
// characters, the catalog found no such table, and the findings on a
// "missing" relation were dropped, so SET NOT NULL scanned 50,000 rows
// under ACCESS EXCLUSIVE. The server is the oracle twice: convert_to
// spells the name in each encoding it accepts as client_encoding (when
// its own verifier takes the bytes back: not 表 in JOHAB), and
// straight to PostgreSQL the statement runs (the table exists under that
// name). Through pgguard it must be refused in every one, with the name
// in the refusal in the client's bytes, and the same statement on a table
// of one row must run.
func TestRedteamNamesInClientEncoding(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	ctx := context.Background()
	names := []string{"表", "Ж", "é"} // the first one the encoding can spell
	setup := []string{}
	for _, n := range names {
		setup = append(setup, `DROP TABLE IF EXISTS "rt_`+n+`"`, `CREATE TABLE "rt_`+n+`" (a int)`,
			`INSERT INTO "rt_`+n+`" SELECT g FROM generate_series(1, 50000) g`, `ANALYZE "rt_`+n+`"`,
			`DROP TABLE IF EXISTS "rt_`+n+`_s"`, `CREATE TABLE "rt_`+n+`_s" (a int)`, `INSERT INTO "rt_`+n+`_s" VALUES (1)`, `ANALYZE "rt_`+n+`_s"`)
	}
	if err := pgExec("guard", setup...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, n := range names {
			pgExec("guard", `DROP TABLE IF EXISTS "rt_`+n+`"`, `DROP TABLE IF EXISTS "rt_`+n+`_s"`)
		}
	})
	direct := connect(t, pg.DSN(pgtest.SuperUser, "guard"))
	defer direct.Close(ctx)
	rows, err := direct.Query(ctx, `SELECT DISTINCT pg_encoding_to_char(i) FROM generate_series(0, 63) i WHERE pg_encoding_to_char(i) NOT IN ('', 'MULE_INTERNAL') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var encodings []string
	for rows.Next() {
		var e string
		rows.Scan(&e)
		encodings = append(encodings, e)
	}
	if rows.Err() != nil || len(encodings) < 30 {
		t.Fatalf("encodings: %v %v", encodings, rows.Err())
	}
	tested := 0
	for _, enc := range encodings {
		var name string
		for _, n := range names {
			var b []byte
			if direct.QueryRow(ctx, "SELECT convert_to($1, $2) WHERE convert_from(convert_to($1, $2), $2) = $1", "rt_"+n, enc).Scan(&b) == nil {
				name = string(b)
				break
			}
		}
		if name == "" || enc == "SQL_ASCII" {
			continue // the encoding spells none of the names
		}
		tested++
		for _, small := range []bool{false, true} {
			stmt := `ALTER TABLE "` + name + `" ALTER COLUMN a SET NOT NULL`
			if small {
				stmt = `ALTER TABLE "` + name + `_s" ALTER COLUMN a SET NOT NULL`
			}
			for _, via := range []string{"direct", "pgguard"} {
				host := pg.Addr()
				if via == "pgguard" {
					host = addr
				}
				cfg, err := pgconn.ParseConfig("postgres://" + pgtest.SuperUser + "@" + host + "/guard?sslmode=disable")
				if err != nil {
					t.Fatal(err)
				}
				cfg.RuntimeParams["client_encoding"] = enc
				c, err := pgconn.ConnectConfig(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.Exec(ctx, "BEGIN; "+stmt+"; ROLLBACK").ReadAll()
				c.Close(ctx)
				var pe *pgconn.PgError
				switch {
				case via == "direct" && err != nil:
					t.Fatalf("%s: premise: straight to PostgreSQL %q: %v", enc, stmt, err)
				case via == "pgguard" && !small && !(errors.As(err, &pe) && pe.Code == "42501"):
					t.Errorf("%s: SET NOT NULL on the 50,000 rows of the table named %q: %v; want pgguard's refusal", enc, name, err)
				case via == "pgguard" && !small && !strings.Contains(pe.Message, `"`+name+`"`):
					// The refusal is written in the client's encoding, as
					// the server writes its messages: the name in it is
					// the client's own bytes.
					t.Errorf("%s: the refusal does not name %q in the client's bytes: %q", enc, name, pe.Message)
				case via == "pgguard" && small && err != nil:
					// No false refusal: pgguard reads the name, and finds
					// the table small, in every encoding (EUC_TW, JOHAB
					// and EUC_JIS_2004 were parse errors).
					t.Errorf("%s: SET NOT NULL on the one row of the table named %q_s: %v; want it run", enc, name, err)
				}
			}
		}
	}
	if tested < 30 {
		t.Fatalf("only %d encodings spell a name", tested)
	}
	t.Logf("%d client encodings", tested)
}
