package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// pgguard reads each statement as the server does at that point of the
// stream: a string continued on the next line keeps E” escapes; in a
// client-only encoding such as SJIS, 0x95 0x5c is one character, not a
// backslash; and a setting changed by a Query still unanswered applies to
// the next Query. In each shape the DROP TABLE once ran unseen.
func TestReadsAsTheServerDoes(t *testing.T) {
	_, addr, _ := guardProxy(t, "", nil)
	for i, tc := range []struct {
		name  string
		setup string   // a Query answered before the others
		write []string // Queries sent in one write
	}{
		{"continued E string", "", []string{"SELECT E'a'\n'\\''; DROP TABLE %s; --'"}},
		{"continued E string after a comment", "", []string{"SELECT E'a' -- c\n'\\''; DROP TABLE %s; --'"}},
		{"SJIS", "SET client_encoding = SJIS", []string{"SELECT E'\x95\x5c'; DROP TABLE %s; --'"}},
		{"GBK", "SET client_encoding = GBK", []string{"SELECT E'\x81\x5c'; DROP TABLE %s; --'"}},
		{"standard_conforming_strings in flight", "SET standard_conforming_strings = off", []string{"SET standard_conforming_strings = on", "SELECT 'a\\'; DROP TABLE %s; --'"}},
		{"client_encoding in flight", "", []string{"SET client_encoding = 'SJIS'", "SELECT E'\x95\x5c'; DROP TABLE %s; --'"}},
		{"client_encoding from a function in flight", "", []string{"SELECT set_config('client_encoding', 'BIG5', false)", "SELECT E'\xa5\x5c'; DROP TABLE %s; --'"}},
		// Found by policy's TestReadingMatchesServer.
		{"SHIFT_JIS_2004", "SET client_encoding = SHIFT_JIS_2004", []string{"SELECT E'\x95\x5c'; DROP TABLE %s; --'"}},
		{"SHIFT_JIS_2004 in flight", "", []string{"SET client_encoding = 'SHIFT_JIS_2004'", "SELECT E'\x95\x5c'; DROP TABLE %s; --'"}},
		{"END as a column label in BEGIN ATOMIC", "", []string{"CREATE FUNCTION pg_temp.reading_f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 case; END; DROP TABLE %s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := fmt.Sprintf("reading_small_%d", i)
			if err := pgExec("guard", "DROP TABLE IF EXISTS "+table, "CREATE TABLE "+table+" (a int)"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pgExec("guard", "DROP TABLE IF EXISTS "+table) })
			c := rawConnect(t, addr, "guard")
			if tc.setup != "" {
				c.send(&pgproto3.Query{String: tc.setup})
				if got := c.until(1); has(got, "ErrorResponse") {
					t.Fatalf("setup: %q", got)
				}
			}
			var msgs []pgproto3.FrontendMessage
			for _, q := range tc.write {
				if strings.Contains(q, "%s") {
					q = fmt.Sprintf(q, table)
				}
				msgs = append(msgs, &pgproto3.Query{String: q})
			}
			c.send(msgs...)
			got := c.until(len(msgs))
			if !has(got, "ErrorResponse ERROR 42501 pgguard: drop-table") {
				t.Errorf("not refused: %q", got)
			}
			if err := pgExec("guard", "SELECT 1 FROM "+table); err != nil {
				t.Fatalf("the DROP TABLE ran: %v", err)
			}
		})
	}
}
