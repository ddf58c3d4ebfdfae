package main

import (
	"os"
	"strings"
	"testing"
)

// The demo's psql transcript (testdata/psql-raw.txt, captured from `make
// demo`) shows each recipe once and no HINT after a rewrite; every other
// line is kept, in order.
func TestTidier(t *testing.T) {
	raw, err := os.ReadFile("testdata/psql-raw.txt")
	if err != nil {
		t.Fatal(err)
	}
	in := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	var out []string
	td := &tidier{emit: func(l string) { out = append(out, l) }}
	for _, l := range in {
		td.line(l)
	}
	td.flush()
	got := strings.Join(out, "\n")

	if n := strings.Count(got, "Safe recipe:"); n != 0 {
		t.Errorf("%d DETAIL recipes left, want 0 (the HINTs repeat them):\n%s", n, got)
	}
	if n := strings.Count(got, "HINT:"); n != 2 {
		t.Errorf("%d HINTs, want 2 (the two refusals):\n%s", n, got)
	}
	if n := strings.Count(got, "UPDATE ledger SET reference = gen_random_uuid()"); n != 1 {
		t.Errorf("the backfill recipe appears %d times, want 1:\n%s", n, got)
	}
	if n := strings.Count(got, "CREATE INDEX CONCURRENTLY ledger_account_idx ON ledger (account)"); n != 1 {
		t.Errorf("the rewritten statement appears %d times, want 1 (in the NOTICE):\n%s", n, got)
	}
	for _, want := range []string{
		"NOTICE:  pgguard: create-index: rewritten to run without blocking writes: CREATE INDEX CONCURRENTLY ledger_account_idx ON ledger (account)\nDETAIL:  CREATE INDEX on ledger holds a SHARE lock",
		"ledger holds about 200000 rows in 14.3 MB.\nCREATE INDEX\nSELECT indexname",
		"ledger holds about 200000 rows in 15.6 MB.\nHINT:  ALTER TABLE ledger ADD COLUMN reference uuid;\nALTER TABLE ledger ALTER COLUMN reference SET DEFAULT gen_random_uuid();\n-- backfill",
		"in 15.6 MB.\nHINT:  -- run this on its own",
		"CREATE INDEX CONCURRENTLY ledger_amount_idx ON ledger (amount);\nCOMMIT;\nROLLBACK",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("transcript lacks %q:\n%s", want, got)
		}
	}
	// Nothing but the dropped lines is lost.
	kept := map[string]int{}
	for _, l := range out {
		kept[l]++
	}
	for _, l := range in {
		if kept[l] > 0 {
			kept[l]--
			continue
		}
		if l != "Safe recipe:" && !strings.HasPrefix(l, "-- ") && !strings.HasPrefix(l, "HINT:  -- ") &&
			!strings.Contains(l, "CONCURRENTLY") && !strings.HasPrefix(l, "ALTER TABLE ledger") && !strings.HasPrefix(l, "UPDATE ledger") {
			t.Errorf("line dropped: %q", l)
		}
	}
}

// A DETAIL recipe that the HINT does not repeat is shown.
func TestTidierKeepsDifferentRecipe(t *testing.T) {
	var out []string
	td := &tidier{emit: func(l string) { out = append(out, l) }}
	for _, l := range []string{"psql:x.sql:1: ERROR:  pgguard: r: m", "DETAIL:  d", "Safe recipe:", "SELECT 1;", "HINT:  SELECT 2;", "psql:x.sql:2: ERROR:  pgguard: r: m", "DETAIL:  d", "Safe recipe:", "SELECT 3;"} {
		td.line(l)
	}
	td.flush()
	if got, want := strings.Join(out, "|"), "psql:x.sql:1: ERROR:  pgguard: r: m|DETAIL:  d|Safe recipe:|SELECT 1;|HINT:  SELECT 2;|psql:x.sql:2: ERROR:  pgguard: r: m|DETAIL:  d|Safe recipe:|SELECT 3;"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
