package policy

import (
	"strings"

	"github.com/pgguard/pgguard/policy/sqltext"
)

// builtinFunctions are PostgreSQL 15's pg_catalog function names, and
// keywords its keywords: written before "(", neither is a call of user
// code (COALESCE(, VALUES (, IN (, numeric(10, 2), ON CONFLICT (, ...).
var builtinFunctions, keywords = wordSet(builtinFunctionNames), wordSet(sqlKeywords)

// funcKeywords are the keywords that may name a function unquoted.
var funcKeywords = wordSet(funcKeywordNames)

// builtinOperators are PostgreSQL 15's pg_catalog operator names.
var builtinOperators = wordSet(builtinOperatorNames)

// BuiltinOperator reports whether an operator, by its name as the parse
// tree lists it (["###"], ["pg_catalog", "+"]), may be a pg_catalog one,
// whose function is immutable or stable. "!=" is "<>" to the server.
// Another name (or schema) is an operator of user code, whose function
// may be volatile; a user's operator of a built-in name on its own types
// is not told apart.
func BuiltinOperator(name []string) bool {
	switch {
	case len(name) == 1:
	case len(name) == 2 && name[0] == "pg_catalog":
	default:
		return false
	}
	op := name[len(name)-1]
	if op == "!=" {
		op = "<>"
	}
	_, ok := builtinOperators[op]
	return ok
}

func wordSet(words string) map[string]struct{} {
	m := map[string]struct{}{}
	for _, w := range strings.Fields(words) {
		m[w] = struct{}{}
	}
	return m
}

// CallsUserFunction reports whether a statement may call a function or
// procedure that is not built in, by the words of its text alone: a name
// followed by "(" that is neither a pg_catalog function nor a keyword
// (a table's column list after INTO, an alias's after AS, are not calls),
// or a schema-qualified name other than pg_catalog's. It parses nothing
// and allocates nothing; it is the proxy's cheap trigger for what only
// the server can tell (the locks a function took, TxEffect.ExclusiveUnnamed).
// A keyword that may name a function (refresh, validate, data) is a call
// where an expression begins (after SELECT, "(", ",", an operator, ...).
// Not seen: a user function that shares a built-in's name
// (public.lower(my_type) written lower(...)), and code that runs without
// a call in the text (a view's functions, triggers, column defaults).
func CallsUserFunction(text string) bool {
	if strings.IndexByte(text, '(') < 0 {
		return false
	}
	l := sqltext.Lexer{Src: text}
	// name: the last word or quoted identifier; qual: the one before
	// it when a "." joins them; before: the word before both.
	var name, qual, before sqltext.Token
	dot := false
	// expr: the token before name (when no word is) opens an expression:
	// "(", ",", an operator. punct: the last token that was no word.
	expr, punct := false, false
	for {
		t, _ := l.NextCode()
		switch t.Kind {
		case sqltext.TokEOF:
			return false
		case sqltext.TokWord, sqltext.TokQuoted:
			if dot && name.Kind != sqltext.TokEOF {
				qual = name
			} else {
				if name.Kind == sqltext.TokEOF {
					expr = punct
				}
				before, qual = name, sqltext.Token{}
			}
			name, dot = t, false
			continue
		case sqltext.TokOpen:
			if name.Kind != sqltext.TokEOF && userCall(text, before, qual, name, expr) {
				return true
			}
		case sqltext.TokOther:
			if t.End-t.Start == 1 && text[t.Start] == '.' {
				dot = true
				continue
			}
		}
		punct = t.Kind == sqltext.TokOpen || t.Kind == sqltext.TokOther
		name, qual, before, dot = sqltext.Token{}, sqltext.Token{}, sqltext.Token{}, false
	}
}

// exprWords are the words after which an expression, and so a call,
// begins, whatever follows: a keyword that may name a function (refresh,
// validate, data) is a call after them, and syntax after any other word
// (ON CONFLICT (, BY RANGE (, PRIMARY KEY (, NOT MATERIALIZED ().
var exprWords = wordSet("select call perform from join where and or then else when case distinct return returning having")

// userCall judges name( with the word before it and its qualifier; expr:
// no word is before it, and the token that is opens an expression.
func userCall(text string, before, qual, name sqltext.Token, expr bool) bool {
	if before.WordIs(text, "into") || before.WordIs(text, "as") || before.WordIs(text, "table") || before.WordIs(text, "only") ||
		before.WordIs(text, "with") || before.WordIs(text, "recursive") || before.WordIs(text, "copy") {
		return false // INSERT INTO t (a, b), AS x (a, b), CREATE TABLE t (...), WITH w (a) AS, COPY t (a) FROM
	}
	if qual.Kind != sqltext.TokEOF {
		if !qual.WordIs(text, "pg_catalog") {
			return true
		}
		return !builtinName(text, name, false)
	}
	if builtinName(text, name, false) {
		return false
	}
	if !builtinName(text, name, true) {
		return true
	}
	// A keyword. PostgreSQL lets an unreserved or type/function-name one
	// name a function, called unquoted (SELECT refresh()): a call where an
	// expression begins. After ")" it is syntax (FILTER (, OVER (,
	// INCLUDE (), after ";" or at the start a command (VACUUM (, EXPLAIN ().
	if !wordIn(funcKeywords, text, name) {
		return false
	}
	if before.Kind == sqltext.TokEOF {
		return expr
	}
	// MERGE's WHEN ... THEN INSERT (a, b) VALUES is syntax.
	return wordIn(exprWords, text, before) && !(before.WordIs(text, "then") && name.WordIs(text, "insert"))
}

// wordIn reports whether the word t, in lower case, is in set.
func wordIn(set map[string]struct{}, text string, t sqltext.Token) bool {
	if t.Kind != sqltext.TokWord || t.End-t.Start > 64 {
		return false
	}
	var buf [64]byte
	b := buf[:0]
	for i := t.Start; i < t.End; i++ {
		b = append(b, sqltext.Lower(text[i]))
	}
	_, ok := set[string(b)]
	return ok
}

// builtinName reports whether the word or quoted identifier t names a
// pg_catalog function (or, with kw, is a keyword).
func builtinName(text string, t sqltext.Token, kw bool) bool {
	if t.Kind == sqltext.TokQuoted {
		s := text[t.Start:t.End]
		if len(s) < 2 || s[0] != '"' || strings.Contains(s[1:len(s)-1], `"`) {
			return false
		}
		_, ok := builtinFunctions[s[1:len(s)-1]]
		return ok
	}
	var buf [64]byte
	if t.End-t.Start > len(buf) {
		return false
	}
	b := buf[:0]
	for i := t.Start; i < t.End; i++ {
		b = append(b, sqltext.Lower(text[i]))
	}
	if _, ok := builtinFunctions[string(b)]; ok {
		return true
	}
	_, ok := keywords[string(b)]
	return kw && ok
}

// RunsUserCode is CallsUserFunction, or an EXECUTE of a prepared
// statement, whose text is not at hand.
func RunsUserCode(text string) bool {
	return CallsUserFunction(text) || sqltext.FirstWordIs(text, "execute")
}
