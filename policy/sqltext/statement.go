package sqltext

// Statement is one SQL statement of a Query string.
type Statement struct {
	// Text is the statement as the client sent it, including comments that
	// precede it (where a pgguard:allow annotation lives), without the
	// terminating semicolon and surrounding whitespace.
	Text string
	// Start and End are byte offsets in the Query string: query[Start:End]
	// is Text.
	Start, End int
	// Line is the 1-based line of the Query string where the statement's
	// code begins (after the comments that precede it).
	Line int
}

// Split splits a Query string into its statements, the way psql and the
// server do: at semicolons outside quotes, comments, dollar quotes,
// parentheses and SQL-standard function bodies (BEGIN ATOMIC ... END).
// Empty and comment-only statements are dropped. It never parses and never
// fails: text the server would reject (say, an unterminated quote) ends up in
// a statement of its own, for the engine to judge.
func Split(query string) []Statement {
	return SplitStrings(query, false)
}

// SplitStrings is Split; with backslashQuote, standard_conforming_strings
// is off, so that a backslash escapes a quote in '...' (the server reads
// 'x\” as one string, x').
func SplitStrings(query string, backslashQuote bool) []Statement {
	var out []Statement
	SplitEach(query, backslashQuote, func(s Statement) bool {
		out = append(out, s)
		return true
	})
	return out
}

// SplitEach is SplitStrings handing each statement to yield, until yield
// returns false. It does not allocate.
func SplitEach(query string, backslashQuote bool, yield func(Statement) bool) {
	var (
		stopped   bool
		lx        = Lexer{Src: query, BackslashQuote: backslashQuote}
		start     = -1 // start of the current statement, -1 before its first token
		codeStart int  // start of its first token that is not a comment
		hasCode   bool // the current statement has a token that is not a comment
		depth     int  // parenthesis depth
		atomic    int  // BEGIN ATOMIC ... END depth
		lastEnd   int
		words     int  // words seen in the current statement
		isRoutine bool // CREATE ... FUNCTION|PROCEDURE
		prevBegin bool // the previous word was BEGIN
		line      = 1
		linePos   = 0
	)
	lineAt := func(pos int) int {
		for ; linePos < pos; linePos++ {
			if query[linePos] == '\n' {
				line++
			}
		}
		return line
	}
	flush := func() {
		if start >= 0 && hasCode && !stopped {
			stopped = !yield(Statement{Text: query[start:lastEnd], Start: start, End: lastEnd, Line: lineAt(codeStart)})
		}
		start, hasCode, depth, atomic, words, isRoutine, prevBegin = -1, false, 0, 0, 0, false, false
	}
	for !stopped {
		t := lx.Next()
		if t.Kind == TokEOF {
			break
		}
		if t.Kind == TokSemi && depth <= 0 && atomic == 0 {
			flush()
			continue
		}
		if start < 0 {
			start = t.Start
		}
		lastEnd = t.End
		switch t.Kind {
		case TokComment:
			continue
		case TokOpen:
			depth++
		case TokClose:
			depth--
		case TokWord:
			words++
			switch {
			case words == 1:
				isRoutine = false
			case t.WordIs(query, "function") || t.WordIs(query, "procedure"):
				isRoutine = isRoutine || FirstWordIs(query[start:], "create")
			case isRoutine && prevBegin && t.WordIs(query, "atomic"):
				if end, ok := routineEnd(query, start, backslashQuote); ok {
					// The server's grammar says where the body ends:
					// END and CASE can also be column labels there
					// (SELECT 1 end), which a count of them misreads.
					lx.Pos, lastEnd = end, end
					continue
				}
				atomic++
			case atomic > 0 && t.WordIs(query, "case"):
				atomic++
			case atomic > 0 && t.WordIs(query, "end"):
				atomic--
			}
			prevBegin = t.WordIs(query, "begin")
		}
		if !hasCode {
			codeStart = t.Start
		}
		hasCode = true
	}
	flush()
}

// routineEnd returns where the statement that starts at query[start:], a
// CREATE FUNCTION or PROCEDURE with a BEGIN ATOMIC body, ends, as
// PostgreSQL's parser (pg_query's copy of it) reads it. ok is false when
// the parser cannot say: text read with standard_conforming_strings off
// (which pg_query does not read), or text the parser refuses, which the
// server refuses too, running none of the Query, however it is split.
func routineEnd(query string, start int, backslashQuote bool) (end int, ok bool) {
	if backslashQuote {
		return 0, false
	}
	defer func() {
		if recover() != nil {
			end, ok = 0, false
		}
	}()
	res, err := PgParse(query[start:])
	if err != nil || len(res.Stmts) == 0 {
		return 0, false
	}
	st := res.Stmts[0]
	end = len(query)
	if st.StmtLen > 0 {
		end = start + int(st.StmtLocation) + int(st.StmtLen)
	}
	for end > start && isSpace(query[end-1]) {
		end--
	}
	return end, end > start
}

// FirstWordIs reports whether the first word of s (after comments and
// parentheses) is kw.
func FirstWordIs(s, kw string) bool {
	t, _ := FirstWord(s)
	return t.WordIs(s, kw)
}

// FirstWord returns the first word token of s, skipping whitespace,
// comments and opening parentheses, and the lexer positioned after it.
func FirstWord(s string) (Token, Lexer) {
	// The lexer is returned by value: this runs for every statement on the
	// proxy's hot path and must not allocate.
	lx := Lexer{Src: s}
	for {
		t := lx.Next()
		switch t.Kind {
		case TokComment, TokOpen:
			continue
		}
		return t, lx
	}
}
