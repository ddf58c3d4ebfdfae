package sqltext

// A small lexer that follows PostgreSQL's scan.l closely enough to find
// statement boundaries, comments and the leading keyword without cgo or a
// parse tree. With standard_conforming_strings on (the default since
// PostgreSQL 9.1) backslashes escape only inside E'...' strings; with it off
// (lexer.backslashQuote) also inside '...'. It reads the text as the server
// does after converting it to its own encoding: the caller converts text in
// a client-only encoding (SJIS, BIG5, ...) first (ClientText), since there
// a byte of a multibyte character can look like a backslash.

type TokenKind uint8

const (
	TokEOF TokenKind = iota
	TokWord
	TokString  // '...', E'...', $tag$...$tag$
	TokQuoted  // "identifier"
	TokComment // -- ... or /* ... */
	TokSemi
	TokOpen
	TokClose
	TokOther // numbers, operators, parameters
)

type Token struct {
	Kind       TokenKind
	Start, End int
}

type Lexer struct {
	Src string
	Pos int
	// backslashQuote: standard_conforming_strings is off, so a backslash
	// escapes the next character in '...' as in E'...'.
	BackslashQuote bool
	// contComment, when set, hears of each -- comment inside a string's
	// continuation (which is part of the string token).
	contComment func(start, end int)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 0x80 || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// lower folds an ASCII upper-case letter to lower case.
func Lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func IsIdentCont(c byte) bool {
	return isIdentStart(c) || c == '$' || (c >= '0' && c <= '9')
}

// next returns the next token, skipping whitespace. An unterminated string,
// identifier or comment runs to the end of the input, as the server would
// report an error for it anyway.
func (l *Lexer) Next() Token {
	s := l.Src
	for l.Pos < len(s) && isSpace(s[l.Pos]) {
		l.Pos++
	}
	start := l.Pos
	if start >= len(s) {
		return Token{Kind: TokEOF, Start: start, End: start}
	}
	c := s[start]
	tok := func(k TokenKind, end int) Token {
		l.Pos = end
		return Token{Kind: k, Start: start, End: end}
	}
	switch {
	case c == ';':
		return tok(TokSemi, start+1)
	case c == '(':
		return tok(TokOpen, start+1)
	case c == ')':
		return tok(TokClose, start+1)
	case c == '-' && start+1 < len(s) && s[start+1] == '-':
		i := start + 2
		for i < len(s) && s[i] != '\n' && s[i] != '\r' {
			i++
		}
		return tok(TokComment, i)
	case c == '/' && start+1 < len(s) && s[start+1] == '*':
		depth, i := 1, start+2
		for i < len(s) && depth > 0 {
			switch {
			case s[i] == '*' && i+1 < len(s) && s[i+1] == '/':
				depth--
				i += 2
			case s[i] == '/' && i+1 < len(s) && s[i+1] == '*':
				depth++
				i += 2
			default:
				i++
			}
		}
		return tok(TokComment, i)
	case c == '\'':
		mode := strStandard
		if l.BackslashQuote {
			mode = strEscape
		}
		return tok(TokString, scanString(s, start+1, mode, l.contComment))
	case c == '"':
		return tok(TokQuoted, scanQuotedIdent(s, start+1))
	case c == '$':
		if end, ok := scanDollar(s, start); ok {
			return tok(TokString, end)
		}
		i := start + 1
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return tok(TokOther, i)
	case isIdentStart(c):
		i := start + 1
		for i < len(s) && IsIdentCont(s[i]) {
			i++
		}
		if i-start == 1 && i < len(s) {
			// A one-letter prefix that makes a string or an identifier
			// of what follows (scan.l's xestart, xbstart, xhstart,
			// xusstart, xuistart); flex prefers them to the identifier,
			// being longer.
			switch lc := Lower(c); {
			case lc == 'e' && s[i] == '\'':
				return tok(TokString, scanString(s, i+1, strEscape, l.contComment))
			case (lc == 'b' || lc == 'x') && s[i] == '\'':
				return tok(TokString, scanString(s, i+1, strBits, l.contComment))
			case lc == 'u' && s[i] == '&' && i+1 < len(s) && s[i+1] == '\'':
				// With standard_conforming_strings off the server refuses
				// U&'...' outright, so its reading does not matter then.
				return tok(TokString, scanString(s, i+2, strStandard, l.contComment))
			case lc == 'u' && s[i] == '&' && i+1 < len(s) && s[i+1] == '"':
				return tok(TokQuoted, scanQuotedIdent(s, i+2))
			}
		}
		return tok(TokWord, i)
	}
	return tok(TokOther, start+1)
}

// scanQuotedIdent returns the end of a quoted identifier whose body starts
// at i; a doubled quote is an escaped quote.
func scanQuotedIdent(s string, i int) int {
	for i < len(s) {
		if s[i] == '"' {
			if i+1 < len(s) && s[i+1] == '"' {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return len(s)
}

// strMode is how the body of a single-quoted string is read: scan.l's
// states xq (and xus), xe, and xb (and xh).
type strMode uint8

const (
	strStandard strMode = iota // '' is a quote; a backslash is a character
	strEscape                  // '' and \' are quotes; a backslash escapes the next byte
	strBits                    // B'...' and X'...': the first quote ends the body
)

// scanString returns the end of a single-quoted string whose body starts
// at i, continuations included: a closing quote followed by whitespace
// that holds a newline, and another quote, goes on with the same string,
// read the same way (scan.l's xqs state and quotecontinue), so that in
// E'a'<newline>'\” the backslash escapes a quote.
func scanString(s string, i int, mode strMode, comment func(start, end int)) int {
	for i < len(s) {
		switch c := s[i]; {
		case c == '\\' && mode == strEscape:
			i += 2
		case c == '\'':
			if mode != strBits && i+1 < len(s) && s[i+1] == '\'' {
				i += 2
				continue
			}
			next := quoteContinue(s, i+1, comment)
			if next < 0 {
				return i + 1
			}
			i = next
		default:
			i++
		}
	}
	return len(s)
}

// quoteContinue returns where the body of a continued string resumes when
// s[i:] starts with scan.l's quotecontinue, else -1:
//
//	horiz_whitespace* newline (space+ | comment newline)* quote
//
// where horiz_whitespace is a space, tab, form feed or vertical tab or a
// -- comment. A /* */ comment ends the string. (Vertical tab is
// whitespace from PostgreSQL 16 on; before, it is a syntax error, so the
// server runs nothing either way.)
func quoteContinue(s string, i int, comment func(start, end int)) int {
	isNewline := func(c byte) bool { return c == '\n' || c == '\r' }
	skipComment := func(i int) int {
		for i < len(s) && !isNewline(s[i]) {
			i++
		}
		return i
	}
	from := i
	for i < len(s) {
		if c := s[i]; c == ' ' || c == '\t' || c == '\f' || c == '\v' {
			i++
		} else if c == '-' && i+1 < len(s) && s[i+1] == '-' {
			i = skipComment(i + 2)
		} else {
			break
		}
	}
	if i >= len(s) || !isNewline(s[i]) {
		return -1
	}
	for i++; i < len(s); {
		if isSpace(s[i]) {
			i++
		} else if s[i] == '-' && i+1 < len(s) && s[i+1] == '-' {
			i = skipComment(i + 2)
		} else {
			break
		}
	}
	if i >= len(s) || s[i] != '\'' {
		return -1
	}
	if comment != nil {
		// Between from and i there are only whitespace and comments.
		for j := from; j < i; j++ {
			if s[j] == '-' && s[j+1] == '-' {
				k := skipComment(j + 2)
				comment(j, k)
				j = k
			}
		}
	}
	return i + 1
}

// scanDollar scans a dollar-quoted string starting at s[i] == '$'.
func scanDollar(s string, i int) (int, bool) {
	j := i + 1
	if j < len(s) && s[j] != '$' {
		if !isIdentStart(s[j]) {
			return 0, false
		}
		for j < len(s) && s[j] != '$' {
			if !IsIdentCont(s[j]) || s[j] == '$' {
				return 0, false
			}
			j++
		}
	}
	if j >= len(s) {
		return 0, false
	}
	delim := s[i : j+1]
	for k := j + 1; k+len(delim) <= len(s); k++ {
		if s[k] == '$' && s[k:k+len(delim)] == delim {
			return k + len(delim), true
		}
	}
	return len(s), true
}

// wordIs reports whether the token is the keyword kw (lower case), ignoring
// ASCII case.
func (t Token) WordIs(src, kw string) bool {
	if t.Kind != TokWord || t.End-t.Start != len(kw) {
		return false
	}
	for i := 0; i < len(kw); i++ {
		if Lower(src[t.Start+i]) != kw[i] {
			return false
		}
	}
	return true
}

// ContainsFold reports whether s contains the lower-case ASCII word w,
// ignoring ASCII case. It does not look at token boundaries: a false
// positive only costs a parse.
func ContainsFold(s, w string) bool {
	if len(w) == 0 {
		return true
	}
	first := w[0]
	for i := 0; i+len(w) <= len(s); i++ {
		if Lower(s[i]) != first {
			continue
		}
		j := 1
		for j < len(w) && Lower(s[i+j]) == w[j] {
			j++
		}
		if j == len(w) {
			return true
		}
	}
	return false
}

// NextCode returns the next token that is not a comment.
func (l *Lexer) NextCode() (Token, *Lexer) {
	t := l.Next()
	for t.Kind == TokComment {
		t = l.Next()
	}
	return t, l
}
