package policy

import (
	"context"
	"github.com/pgguard/pgguard/policy/sqltext"
	"testing"
)

func TestStandardText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SELECT 'a'", "SELECT 'a'"},
		{`SELECT 'a\''`, `SELECT E'a\''`},
		{`SELECT E'a\'', 'b\\'`, `SELECT E'a\'', E'b\\'`},
		{"SELECT 'a'\n'\\''", "SELECT E'a'\n'\\''"},
		{`SELECT int4'1\\'`, `SELECT int4 E'1\\'`},
		{`SELECT N'1\\', n'\'', an'\''`, `SELECT E'1\\', E'\'', an E'\''`},
		{`SELECT $$\'$$, "\'", b'1', '\'' -- \'`, `SELECT $$\'$$, "\'", b'1', E'\'' -- \'`},
	} {
		if got, _ := sqltext.StandardText(tc.in); got != tc.want {
			t.Errorf("StandardText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestBackslashQuoteParse: with standard_conforming_strings off, the
// statement pg_query parses is the one the server runs. Read with the
// setting on, the string after DEFAULT runs to the last quote and hides
// the type change, which the server makes.
func TestBackslashQuoteParse(t *testing.T) {
	e, err := NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	q := "ALTER TABLE t ALTER COLUMN a SET DEFAULT 'x\\'', ALTER COLUMN a TYPE varchar(3) --'"
	for _, decide := range []func() Decision{
		func() Decision {
			ds, _ := e.DecideQuery(context.Background(), q, &Context{BackslashQuote: true, Alone: true})
			return ds[0].Decision
		},
		func() Decision {
			return e.Decide(context.Background(), sqltext.Statement{Text: q, End: len(q)}, &Context{BackslashQuote: true, Alone: true})
		},
	} {
		d := decide()
		found := false
		for _, f := range d.Findings {
			found = found || f.RuleID == "alter-column-type"
		}
		if !found || d.Action != Reject {
			t.Errorf("%q with standard_conforming_strings off: %v %+v, want alter-column-type's refusal", q, d.Action, d.Findings)
		}
	}
}

// TestParseContinuedString: a -- comment in a string's continuation is
// whitespace to PostgreSQL; pg_query's parser ended the string there and
// refused the statement as a parse error.
func TestParseContinuedString(t *testing.T) {
	e, err := NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	q := "ALTER TABLE t ALTER COLUMN a SET DEFAULT 'a' -- c\n'b', ALTER COLUMN a TYPE varchar(3)"
	d := e.Decide(context.Background(), sqltext.Statement{Text: q, End: len(q)}, &Context{Alone: true})
	var ids []string
	for _, f := range d.Findings {
		ids = append(ids, f.RuleID)
	}
	if len(ids) != 1 || ids[0] != "alter-column-type" {
		t.Errorf("%q: findings %v, want alter-column-type alone", q, ids)
	}
}
