package proxy

import (
	"context"
	"math/rand"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestReadingRedTeamEncodings: the ways a client can put a client-only
// encoding (one whose characters can end in a backslash or a quote byte)
// in force, each followed by generated Query strings that hide a DROP
// TABLE behind such a character: SET in an earlier Query of the same
// write, set_config in a DO block of the same write, startup options
// (PGOPTIONS), ALTER ROLE ... SET, and SET inside the Query itself (the
// server converts a Query with the encoding in force when it arrives).
// The server is the oracle: each string runs first on a direct session
// under the same settings, in a transaction rolled back, which tells
// whether the DROP runs there; through pgguard the table must survive
// every string, and pgguard must refuse as unreadable (22021) nothing
// the server runs.
//
// PGGUARD_READING_QUERIES sets the strings per shape and encoding
// (default 4), PGGUARD_READING_SEED the seed (default 1).
func TestReadingRedTeamEncodings(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	perCase := redteamEnvInt("PGGUARD_READING_QUERIES", 4)
	seed := int64(redteamEnvInt("PGGUARD_READING_SEED", 1))
	const table = "rt_read"
	recreate := func() {
		if err := pgExec("guard", "DROP TABLE IF EXISTS "+table, "CREATE TABLE "+table+" (a int)"); err != nil {
			t.Fatal(err)
		}
	}
	recreate()
	t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS "+table) })
	encodings := []string{"SJIS", "SHIFT_JIS_2004", "BIG5", "GBK", "UHC", "GB18030"}
	for _, enc := range encodings {
		role := "rt_enc_" + strings.ToLower(enc)
		if err := pgExec("guard", "DROP ROLE IF EXISTS "+role, "CREATE ROLE "+role+" LOGIN SUPERUSER",
			"ALTER ROLE "+role+" SET client_encoding = '"+enc+"'"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pgExec("guard", "DROP ROLE IF EXISTS "+role) })
	}
	type shape struct {
		name string
		// connect opens the session through pgguard.
		connect func(enc string) *rawClient
		// before are Queries sent in the same write before each string.
		before func(enc string) []string
		// prefix goes in front of the string, in the same Query.
		prefix func(enc string) string
		// oracleEnc is the client_encoding of the direct session.
		oracleEnc func(enc string) string
	}
	plain := func(string) *rawClient { return rawConnect(t, addr, "guard") }
	none := func(string) []string { return nil }
	noPrefix := func(string) string { return "" }
	same := func(enc string) string { return enc }
	shapes := []shape{
		{"SET in flight", plain, func(enc string) []string { return []string{"SET client_encoding = '" + enc + "'"} }, noPrefix, same},
		{"set_config in DO in flight", plain, func(enc string) []string {
			return []string{"DO $$BEGIN PERFORM set_config('client_encoding', '" + enc + "', false); END$$"}
		}, noPrefix, same},
		{"PGOPTIONS", func(enc string) *rawClient {
			return rawConnectParams(t, addr, map[string]string{"user": pgtest.SuperUser, "database": "guard", "options": "-c client_encoding=" + enc})
		}, none, noPrefix, same},
		{"ALTER ROLE SET", func(enc string) *rawClient {
			return rawConnectParams(t, addr, map[string]string{"user": "rt_enc_" + strings.ToLower(enc), "database": "guard"})
		}, none, noPrefix, same},
		{"SET in the same Query", plain, none, func(enc string) string { return "SET client_encoding = '" + enc + "'; " }, func(string) string { return "UTF8" }},
	}
	var strs, serverRan, serverDrops, refusedDrop, falseRefusals, unreadable, dropped int
	for _, sh := range shapes {
		for _, enc := range encodings {
			r := rand.New(rand.NewSource(seed ^ int64(redteamFNV(sh.name+enc))))
			oracle := oracleConn(t, sh.oracleEnc(enc))
			c := sh.connect(enc)
			for i := 0; i < perCase; i++ {
				s := sh.prefix(enc) + redteamString(r, enc, table)
				strs++
				ran, drops := oracleRun(t, oracle, s, table)
				if ran {
					serverRan++
				}
				if drops {
					serverDrops++
				}
				var msgs []pgproto3.FrontendMessage
				for _, q := range sh.before(enc) {
					msgs = append(msgs, &pgproto3.Query{String: q})
				}
				msgs = append(msgs, &pgproto3.Query{String: s}, &pgproto3.Query{String: "RESET client_encoding"})
				c.send(msgs...)
				got := c.until(len(msgs))
				refused := has(got, "ErrorResponse ERROR 42501 pgguard: drop-table")
				switch {
				case refused:
					refusedDrop++
					if ran && !drops {
						falseRefusals++
					}
				case has(got, "ErrorResponse ERROR 22021 pgguard:"):
					unreadable++
					if ran {
						t.Errorf("%s %s: pgguard refuses as unreadable %q, which the server runs", sh.name, enc, s)
					}
				}
				if pgExec("guard", "SELECT 1 FROM "+table) != nil {
					dropped++
					t.Errorf("%s %s: the DROP TABLE ran through pgguard: %q (server drops: %v): %q", sh.name, enc, s, drops, got)
					recreate()
				}
			}
			oracle.Close(context.Background())
		}
	}
	t.Logf("%d strings (%d shapes × %d encodings × %d, seed %d): the server ran %d, its DROP ran in %d; through pgguard: refused for the DROP %d (of them %d where the server reads no DROP), refused as unreadable %d, DROP ran %d",
		strs, len(shapes), len(encodings), perCase, seed, serverRan, serverDrops, refusedDrop, falseRefusals, unreadable, dropped)
}

func redteamEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func redteamFNV(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// redteamString returns a Query string that hides DROP TABLE table behind
// a character of enc whose last byte may be a backslash or a quote.
func redteamString(r *rand.Rand, enc, table string) string {
	char := func() string {
		lead := byte(0x81 + r.Intn(0x7e))
		trails := []byte{0x5c, 0x5c, 0x27, 0x40, 0x7e, 0x80, 0xa1, 0xfe}
		if enc == "GB18030" && r.Intn(4) == 0 {
			return string([]byte{lead, byte(0x30 + r.Intn(10)), byte(0x81 + r.Intn(0x7e)), byte(0x30 + r.Intn(10))})
		}
		return string([]byte{lead, trails[r.Intn(len(trails))]})
	}
	body := ""
	for n := 1 + r.Intn(3); n > 0; n-- {
		body += char()
	}
	drop := "; DROP TABLE " + table + "; --"
	switch r.Intn(5) {
	case 0:
		return "SELECT '" + body + "'" + drop + "'"
	case 1:
		return "SELECT E'a' -- c\n'" + body + "'" + drop + "'"
	case 2:
		return "SELECT 1 AS \"" + body + "\"" + drop + "\""
	default:
		return "SELECT E'" + body + "'" + drop + "'"
	}
}

// oracleConn is a direct session to the server under client_encoding enc.
func oracleConn(t *testing.T, enc string) *pgconn.PgConn {
	t.Helper()
	cfg, err := pgconn.ParseConfig(pg.DSN(pgtest.SuperUser, "guard"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgconn.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), "SET client_encoding = '"+enc+"'").ReadAll(); err != nil {
		t.Fatal(err)
	}
	return conn
}

// oracleRun runs s on the direct session in a transaction rolled back:
// ran when the server ran all of it, drops when its DROP TABLE ran.
func oracleRun(t *testing.T, conn *pgconn.PgConn, s, table string) (ran, drops bool) {
	t.Helper()
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "BEGIN").ReadAll(); err != nil {
		t.Fatal(err)
	}
	_, err := conn.Exec(ctx, s).ReadAll()
	ran = err == nil
	if ran {
		res, err := conn.Exec(ctx, "SELECT to_regclass('"+table+"') IS NULL").ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		drops = string(res[0].Rows[0][0]) == "t"
	}
	if _, err := conn.Exec(ctx, "ROLLBACK").ReadAll(); err != nil {
		t.Fatal(err)
	}
	return ran, drops
}

// rawConnectParams is rawConnect with the startup parameters given.
func rawConnectParams(t *testing.T, addr string, params map[string]string) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn, fe: pgproto3.NewFrontend(conn, conn)}
	c.fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: params})
	if got := c.until(1); has(got, "ErrorResponse") {
		t.Fatalf("startup %v: %q", params, got)
	}
	return c
}
