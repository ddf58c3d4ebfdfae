package sqltext

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// DefaultMaxStatementBytes is the default longest statement the engine
// parses (max_statement_bytes); longer DDL counts as a parse error.
const DefaultMaxStatementBytes = 1 << 20

// errTooLong is wrapped by parse errors for statements over the limit.
var errTooLong = errors.New("statement too long to parse")

// ParseStatement parses one statement into its node. It never panics: the
// parser is C code behind cgo and protobuf decoding, so any panic on the
// way is turned into an error. Deeply nested input is refused by the parser
// itself (stack depth check) or by protobuf decoding (recursion limit).
func ParseStatement(text string, maxBytes int) (node *pg_query.Node, err error) {
	if len(text) > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes, max_statement_bytes is %d", errTooLong, len(text), maxBytes)
	}
	defer func() {
		if r := recover(); r != nil {
			node, err = nil, fmt.Errorf("parser failed: %v", r)
		}
	}()
	res, err := PgParse(text)
	if err != nil {
		return nil, err
	}
	if len(res.Stmts) != 1 || res.Stmts[0].Stmt == nil {
		return nil, fmt.Errorf("expected one statement, found %d", len(res.Stmts))
	}
	return res.Stmts[0].Stmt, nil
}

// ForPgQuery returns text prepared for pg_query, whose scanner ends a
// string at a -- comment that PostgreSQL reads as the whitespace of a
// continuation ('a' -- c, a newline, then 'b' is one string there): each
// -- comment is turned into spaces. The text keeps its length, so the
// locations pg_query reports still point into text. Every call of
// pg_query's Parse, Scan, Normalize and ParsePlPgSqlToJSON in the module
// goes through it (PgParse, PgScan, PgNormalize, PgParsePlPgSQL;
// TestPgQueryOnlyThroughSqltext).
func ForPgQuery(text string) string { return blankLineComments(text) }

// PgParse is pg_query.Parse of text as PostgreSQL reads it (ForPgQuery).
func PgParse(text string) (*pg_query.ParseResult, error) {
	return pg_query.Parse(ForPgQuery(text))
}

// PgScan is pg_query.Scan of text as PostgreSQL reads it (ForPgQuery):
// the tokens' offsets point into text.
func PgScan(text string) (*pg_query.ScanResult, error) {
	return pg_query.Scan(ForPgQuery(text))
}

// PgParsePlPgSQL is pg_query.ParsePlPgSqlToJSON of a DO or CREATE
// FUNCTION statement as PostgreSQL reads it (ForPgQuery). Only the
// statement's own -- comments are blanked: those inside its body (a
// dollar-quoted string) are the body's text, and a continuation with a
// -- comment there is still read as pg_query reads it.
func PgParsePlPgSQL(text string) (string, error) {
	return pg_query.ParsePlPgSqlToJSON(ForPgQuery(text))
}

// PgNormalize is pg_query.Normalize of text as PostgreSQL reads it
// (ForPgQuery): its -- comments come back as spaces.
func PgNormalize(text string) (string, error) {
	return pg_query.Normalize(ForPgQuery(text))
}

// blankLineComments returns text with each -- comment's bytes turned
// into spaces, those inside a string's continuation included.
func blankLineComments(text string) string {
	if !strings.Contains(text, "--") {
		return text
	}
	var b []byte
	blank := func(start, end int) {
		if b == nil {
			b = []byte(text)
		}
		for i := start; i < end; i++ {
			b[i] = ' '
		}
	}
	lx := Lexer{Src: text, contComment: blank}
	for t := lx.Next(); t.Kind != TokEOF; t = lx.Next() {
		if t.Kind == TokComment && text[t.Start] == '-' {
			blank(t.Start, t.End)
		}
	}
	if b == nil {
		return text
	}
	return string(b)
}

// ReplaceParams writes query with each parameter $n replaced by
// value(n) (1-based), as the scanner finds them: a $1 inside a string,
// a comment or a dollar quote is left alone. ok is false when the text
// cannot be scanned or names a parameter value does not have
// (value returns ok false).
func ReplaceParams(query string, value func(n int) (string, bool)) (string, bool) {
	scan, err := PgScan(query)
	if err != nil {
		return "", false
	}
	var b strings.Builder
	last := 0
	for _, t := range scan.Tokens {
		if t.Token != pg_query.Token_PARAM {
			continue
		}
		start, end := int(t.Start), int(t.End)
		n, err := strconv.Atoi(query[start+1 : end])
		if err != nil || n < 1 {
			return "", false
		}
		v, ok := value(n)
		if !ok {
			return "", false
		}
		b.WriteString(query[last:start])
		b.WriteString(v)
		last = end
	}
	b.WriteString(query[last:])
	return b.String(), true
}
