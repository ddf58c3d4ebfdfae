package policy

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/pgguard/pgguard/policy/sqltext"
)

// The lock_timeout pgguard sets before a Query that holds DDL holds for
// the whole Query: code that a statement before the DDL runs, which the
// statement does not show (a function it calls, a view's query, a
// trigger, a column DEFAULT, and what they call in turn), may turn it off
// as it runs, and the DDL would then wait for its lock for as long as
// another session holds one. userCodeLockTimeout reads that code.

// maxCodeRounds is how deep calls are followed; maxCodeNames bounds the
// names one round asks about. Past either pgguard cannot tell.
const (
	maxCodeRounds = 8
	maxCodeNames  = 500
)

// userCodeLockTimeout says how the code that text runs without naming it
// may change lock_timeout, or why pgguard cannot tell that it does not; ""
// when it does not. It asks the catalog (UserCodeCatalog) about every
// name the text holds (the catalog finds which are relations and
// functions), then about the names in the bodies of the functions it
// lists, round after round. A function's body may change lock_timeout
// when it names set_config, pg_settings or lock_timeout, or has a RESET
// or an EXECUTE (dynamic SQL, or a prepared statement: unknown), whatever
// its own SET clauses (PostgreSQL restores a function's SET lock_timeout
// clause when it returns, but a plain SET or set_config(..., false) in
// its body outlives it: TestRedteamLockTimeoutTurnedOffByUserCode); the
// members of extensions are taken as they are; code in another
// language than SQL and PL/pgSQL cannot be read. memo keeps the answers
// for the names asked, for the rest of the Query.
func userCodeLockTimeout(ctx context.Context, cat Catalog, text string, memo map[string]string) string {
	names := codeNames(text)
	if len(names) == 0 {
		return ""
	}
	key := codeKey(names)
	if why, ok := memo[key]; ok {
		return why
	}
	why := readUserCode(ctx, cat, text, names)
	if memo != nil {
		memo[key] = why
	}
	return why
}

func readUserCode(ctx context.Context, cat Catalog, text string, names []Table) string {
	uc, ok := cat.(UserCodeCatalog)
	if !ok || cat == nil {
		if CallsUserFunction(text) {
			return "it calls a function that is not built in, whose code pgguard cannot read here"
		}
		return ""
	}
	asked := map[Table]bool{}
	read := map[string]bool{}
	for round := 0; ; round++ {
		var ask []Table
		for _, n := range names {
			if !asked[n] {
				asked[n] = true
				ask = append(ask, n)
			}
		}
		if len(ask) == 0 {
			return ""
		}
		if round == maxCodeRounds || len(ask) > maxCodeNames {
			return "the functions it runs call others deeper than pgguard follows"
		}
		code, ok := uc.UserCode(ctx, ask, ask)
		if !ok {
			return "pgguard could not read the code it runs from the catalog"
		}
		names = nil
		for _, f := range code {
			if read[f.Name+"\x00"+f.Body] {
				continue
			}
			read[f.Name+"\x00"+f.Body] = true
			switch {
			case f.Builtin:
				return "it runs " + f.Name + " (in a view, a default, a trigger or a function it calls)"
			case f.Extension:
				continue
			case f.Language != "sql" && f.Language != "plpgsql":
				return fmt.Sprintf("it runs function %s, in %s, whose code pgguard cannot read", f.Name, f.Language)
			}
			if why := bodyChangesLockTimeout(f.Body); why != "" {
				if f.Definition {
					return fmt.Sprintf("it runs %s, which %s", f.Name, why)
				}
				return fmt.Sprintf("it runs function %s, whose body %s", f.Name, why)
			}
			names = append(names, codeNames(f.Body)...)
		}
	}
}

// bodyChangesLockTimeout says how a SQL or PL/pgSQL body may change
// lock_timeout, "" when it cannot.
func bodyChangesLockTimeout(body string) string {
	for _, w := range []string{"set_config", "pg_settings", "lock_timeout"} {
		if sqltext.ContainsFold(body, w) {
			return "names " + w
		}
	}
	why := ""
	eachWord(body, func(t sqltext.Token, src string) bool {
		switch {
		case t.WordIs(src, "reset"):
			why = "runs RESET"
		case t.WordIs(src, "execute"):
			why = "runs EXECUTE, SQL that pgguard cannot read ahead"
		}
		return why == ""
	})
	return why
}

// eachWord calls f with each word token of src, and of the text of each
// dollar-quoted string in it (a DO block's body, a nested function's),
// until f returns false.
func eachWord(src string, f func(t sqltext.Token, src string) bool) bool {
	l := sqltext.Lexer{Src: src}
	for {
		t, _ := l.NextCode()
		switch t.Kind {
		case sqltext.TokEOF:
			return true
		case sqltext.TokWord:
			if !f(t, src) {
				return false
			}
		case sqltext.TokString:
			if inner, ok := dollarBody(src[t.Start:t.End]); ok && !eachWord(inner, f) {
				return false
			}
		}
	}
}

// dollarBody returns what a $tag$...$tag$ string holds.
func dollarBody(s string) (string, bool) {
	if len(s) < 2 || s[0] != '$' {
		return "", false
	}
	end := strings.IndexByte(s[1:], '$')
	if end < 0 {
		return "", false
	}
	tag := s[:end+2]
	if len(s) < 2*len(tag) || !strings.HasSuffix(s, tag) {
		return "", false
	}
	return s[len(tag) : len(s)-len(tag)], true
}

// codeNames lists the names a text holds, qualified where it qualifies
// them (a word folded to lower case, a quoted identifier as it is), each
// once, sorted; the text of dollar-quoted strings is read too. Which of
// them are relations or functions is the catalog's to say.
func codeNames(src string) []Table {
	seen := map[Table]bool{}
	var walk func(src string)
	walk = func(src string) {
		l := sqltext.Lexer{Src: src}
		var prev Table
		dot, have := false, false
		// An operator (a run of operator characters): its function runs.
		opStart, opEnd := -1, -1
		for {
			t, _ := l.NextCode()
			if t.Kind == sqltext.TokOther && t.End-t.Start == 1 && strings.IndexByte(opChars, src[t.Start]) >= 0 {
				if opEnd != t.Start {
					addOperator(seen, src, opStart, opEnd)
					opStart = t.Start
				}
				opEnd = t.End
				have, dot = false, false
				continue
			}
			addOperator(seen, src, opStart, opEnd)
			opStart, opEnd = -1, -1
			switch t.Kind {
			case sqltext.TokEOF:
				return
			case sqltext.TokWord, sqltext.TokQuoted:
				part := identText(src[t.Start:t.End], t.Kind == sqltext.TokQuoted)
				if part == "" || t.Kind == sqltext.TokWord && reservedWords[part] && !dot {
					have, dot = false, false
					continue
				}
				if dot && have && prev.Schema == "" {
					seen[prev] = true
					prev = Table{Schema: prev.Name, Name: part}
				} else {
					prev = Table{Name: part}
				}
				seen[prev] = true
				have, dot = true, false
				continue
			case sqltext.TokString:
				if inner, ok := dollarBody(src[t.Start:t.End]); ok {
					walk(inner)
				}
			case sqltext.TokOther:
				if t.End-t.Start == 1 && src[t.Start] == '.' && have {
					dot = true
					continue
				}
			}
			have, dot = false, false
		}
	}
	walk(src)
	out := make([]Table, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Schema != out[j].Schema {
			return out[i].Schema < out[j].Schema
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// opChars are the characters of operator names.
const opChars = "+-*/<>=~!@#%^&|`?"

// addOperator adds the operator src[start:end] to seen, as the server
// reads it: a name of more than one character ends in + or - only when
// it holds one of ~ ! @ # % ^ & | ` ? (scan.l).
func addOperator(seen map[Table]bool, src string, start, end int) {
	if start < 0 || end <= start {
		return
	}
	op := src[start:end]
	if !strings.ContainsAny(op, "~!@#%^&|`?") {
		for len(op) > 1 && (op[len(op)-1] == '+' || op[len(op)-1] == '-') {
			op = op[:len(op)-1]
		}
	}
	seen[Table{Name: op}] = true
}

// identText is an identifier's name: a word folded to lower case, a
// quoted identifier unquoted ("" for what is no name: U&"...").
func identText(s string, quoted bool) string {
	if !quoted {
		return strings.ToLower(s)
	}
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return ""
	}
	return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
}

func codeKey(names []Table) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n.String())
		b.WriteByte(0)
	}
	return b.String()
}
