package sqltext

import (
	"math/rand"
	"strings"
	"testing"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// The lexer is a second reading of SQL beside PostgreSQL's scanner; these
// tests pin it to the scanner. Here the oracle is pg_query's copy of
// scan.l (standard_conforming_strings on, UTF-8); lexer_pg_test.go asks
// the server itself, also with standard_conforming_strings off and in the
// client-only encodings.

// genStatements returns a random Query string: statements made of the
// shapes where a hand-written lexer and scan.l part ways (string prefixes,
// continuations with and without newlines and comments, backslashes,
// doubled quotes, nested comments, dollar quotes, quoted identifiers,
// multibyte characters), mostly valid SQL so that the server runs them.
// chars, when set, are extra characters for string bodies (an encoding's
// characters whose bytes hide a backslash).
func genStatements(r *rand.Rand, chars []string) string {
	pick := func(xs ...string) string { return xs[r.Intn(len(xs))] }
	body := func(bits bool) string {
		var b strings.Builder
		for n := r.Intn(6); n > 0; n-- {
			switch {
			case bits:
				b.WriteString(pick("0", "1", "01", "''", `\`))
			case len(chars) > 0 && r.Intn(3) == 0:
				b.WriteString(chars[r.Intn(len(chars))])
			default:
				b.WriteString(pick("a", " ", ";", `\`, `\'`, `\\`, "''", `"`, "--", "/*", "*/", "$$", "$a$",
					"é", "中", "\n", "; SHOW work_mem; --", `\n`, "'", "E'", "\r"))
			}
		}
		return b.String()
	}
	sep := func() string {
		return pick(" ", " ", "\n", "/* c */", "/* /* n */ */", "-- c\n", "\t")
	}
	cont := func() string {
		return pick("\n", " \n ", "\t-- c\n", "\n-- c\n  ", " ", "/* c */\n", "\r", "\n\n", "\v\n", "-- c")
	}
	str := func() string {
		prefix := pick("", "", "E", "e", "U&", "b", "x", "N", "E")
		bits := prefix == "b" || prefix == "x"
		s := prefix + "'" + body(bits) + "'"
		for r.Intn(3) == 0 {
			s += cont() + "'" + body(bits) + "'"
		}
		return s
	}
	expr := func() string {
		switch r.Intn(8) {
		case 0:
			return pick("1", "2.5", "$$a;b$$", "$a$ ; ' $$ $a$", `"a;b"`, `U&"x"`, "(1)", "é", `"中"`)
		case 1:
			return str() + " AS " + pick(`"x"`, "y", `"'"`, `U&"z"`)
		}
		return str()
	}
	var b strings.Builder
	for n := 1 + r.Intn(3); n > 0; n-- {
		switch r.Intn(6) {
		case 0:
			b.WriteString(pick("SHOW work_mem", "VALUES (1)", "DO $$ BEGIN END $$", "/* x */ SELECT 1"))
		default:
			b.WriteString("SELECT")
			b.WriteString(sep())
			for m := 1 + r.Intn(3); m > 0; m-- {
				b.WriteString(expr())
				if m > 1 {
					b.WriteString("," + sep())
				}
			}
		}
		b.WriteString(pick(";", "; ", ";\n", " ; ", ";"+sep()))
	}
	return b.String()
}

// lexShape is what the split and the classification see of a token
// stream: where the semicolons, parentheses, words, strings and quoted
// identifiers are.
type lexShape struct {
	kind       TokenKind
	start, end int
}

// ourShape lexes query with the lexer.
func ourShape(query string, backslashQuote bool) []lexShape {
	var out []lexShape
	lx := Lexer{Src: query, BackslashQuote: backslashQuote}
	for {
		t := lx.Next()
		switch t.Kind {
		case TokEOF:
			return out
		case TokSemi, TokOpen, TokClose, TokWord, TokString, TokQuoted:
			out = append(out, lexShape{t.Kind, t.Start, t.End})
		}
	}
}

// scanShape lexes query with pg_query's scanner. ok is false when the
// scanner refuses the text (the server then runs none of it) or when the
// text is one that pg_query's copy of scan.l reads differently from the
// server's: pg_query returns -- comments as tokens, which ends a string
// that the server continues ('a' -- c<newline>'b' is one string there).
func scanShape(query string) (shape []lexShape, ok bool) {
	if strings.IndexByte(query, 0) >= 0 || !utf8.ValidString(query) {
		return nil, false // the wire cannot carry NUL; the server refuses invalid UTF-8
	}
	res, err := pg_query.Scan(query)
	if err != nil {
		return nil, false
	}
	var numbers [][2]int
	prevString := false
	for _, t := range res.Tokens {
		s, e := int(t.Start), int(t.End)
		isString := false
		switch t.Token {
		case pg_query.Token_ASCII_59:
			shape = append(shape, lexShape{TokSemi, s, e})
		case pg_query.Token_ASCII_40:
			shape = append(shape, lexShape{TokOpen, s, e})
		case pg_query.Token_ASCII_41:
			shape = append(shape, lexShape{TokClose, s, e})
		case pg_query.Token_SCONST, pg_query.Token_USCONST, pg_query.Token_BCONST, pg_query.Token_XCONST:
			shape = append(shape, lexShape{TokString, s, e})
			isString = true
		case pg_query.Token_UIDENT:
			shape = append(shape, lexShape{TokQuoted, s, e})
		case pg_query.Token_IDENT:
			if query[s] == '"' {
				shape = append(shape, lexShape{TokQuoted, s, e})
			} else {
				shape = append(shape, lexShape{TokWord, s, e})
			}
		case pg_query.Token_ICONST, pg_query.Token_FCONST, pg_query.Token_PARAM:
			numbers = append(numbers, [2]int{s, e})
		case pg_query.Token_SQL_COMMENT:
			if prevString {
				return nil, false
			}
		default:
			if t.KeywordKind != pg_query.KeywordKind_NO_KEYWORD {
				shape = append(shape, lexShape{TokWord, s, e})
			}
		}
		prevString = isString
	}
	return shape, true
}

// dropInNumbers removes the lexer's tokens that lie inside a number or
// parameter of the scanner: the lexer reads 1e5 as 1, e5, which no
// classification depends on (a statement that starts with a number is
// judged in full).
func dropInNumbers(query string, ours []lexShape) []lexShape {
	res, err := pg_query.Scan(query)
	if err != nil {
		return ours
	}
	out := ours[:0:0]
	for _, o := range ours {
		inside := false
		for _, t := range res.Tokens {
			switch t.Token {
			case pg_query.Token_ICONST, pg_query.Token_FCONST, pg_query.Token_PARAM:
				if int(t.Start) <= o.start && o.end <= int(t.End) {
					inside = true
				}
			}
		}
		if !inside {
			out = append(out, o)
		}
	}
	return out
}

// checkAgainstScanner compares the lexer with pg_query's scanner on query.
func checkAgainstScanner(t *testing.T, query string) {
	t.Helper()
	want, ok := scanShape(query)
	if !ok {
		return
	}
	got := dropInNumbers(query, ourShape(query, false))
	if len(got) != len(want) {
		t.Fatalf("lexer and scanner disagree on %q:\nlexer   %s\nscanner %s", query, showShape(query, got), showShape(query, want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("lexer and scanner disagree on %q at token %d:\nlexer   %s\nscanner %s", query, i, showShape(query, got), showShape(query, want))
		}
	}
}

func showShape(query string, sh []lexShape) string {
	var b strings.Builder
	for _, s := range sh {
		b.WriteString(" [" + query[s.start:s.end] + "]")
	}
	return b.String()
}

// TestLexerMatchesScanner runs the lexer and pg_query's scanner over
// generated Query strings from a fixed seed (the seed is in the failure
// message's query) and over the shapes that once parted them.
func TestLexerMatchesScanner(t *testing.T) {
	for _, q := range lexerCases {
		checkAgainstScanner(t, q)
	}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		checkAgainstScanner(t, genStatements(r, nil))
	}
}

// lexerCases are shapes where the lexer once read SQL differently from the
// server; the fuzz corpus starts from them.
var lexerCases = []string{
	"SELECT E'a'\n'\\''; ALTER TABLE big ALTER COLUMN account TYPE bigint",
	"SELECT e'a' \n\n '\\''; DROP TABLE small; --'",
	"SELECT 'a'\n'\\''; DROP TABLE small; --'",
	"SELECT b'01'\n'1'; SELECT 2",
	"SELECT x'1f''2'; SELECT 2",
	"SELECT U&'a'\n'b''c'; SELECT 2",
	"SELECT U&\"a\"\"b\" FROM t; SELECT 2",
	"SELECT n'a' x; SELECT 2",
	"SELECT E'a' /* c */\n'\\''; SELECT 2",
	"SELECT E'a'\r'\\''; SELECT 2; --'",
	"SELECT E'a'\n\n\t '\\'' ; SELECT 2; --'",
}

// FuzzLexerScanner is TestLexerMatchesScanner on fuzzed input.
func FuzzLexerScanner(f *testing.F) {
	for _, q := range lexerCases {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		if len(query) > 4096 {
			return
		}
		checkAgainstScanner(t, query)
	})
}

// TestSplitContinuedStrings: a string continued on a later line keeps
// reading backslashes as its first part did.
func TestSplitContinuedStrings(t *testing.T) {
	for _, tc := range []struct {
		query          string
		backslashQuote bool
		want           int
	}{
		{"SELECT E'a'\n'\\''; ALTER TABLE big ALTER COLUMN a TYPE bigint", false, 2},
		{"SELECT E'a' -- c\n'\\''; DROP TABLE small", false, 2},
		{"SELECT E'a'\n-- c\n  '\\''; DROP TABLE small", false, 2},
		{"SELECT 'a'\n'\\''; DROP TABLE small; --'", true, 2},
		{"SELECT 'a'\n'\\''; DROP TABLE small; --'", false, 1},
		{"SELECT E'a' /* c */\n'\\''; DROP TABLE small; --'", false, 1},
		{"SELECT E'a' '\\''; DROP TABLE small; --'", false, 1},
		{"SELECT b'0''\\'; DROP TABLE small; --'", true, 1},
	} {
		stmts := SplitStrings(tc.query, tc.backslashQuote)
		if len(stmts) != tc.want {
			t.Errorf("split(%q, backslashQuote=%v) = %d statements, want %d", tc.query, tc.backslashQuote, len(stmts), tc.want)
		}
	}
}
