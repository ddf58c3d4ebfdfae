package policy

// Small edits of a statement's original text for rewrites, so that the
// rewritten statement keeps the user's spelling, names and comments.

// insertAfterWord inserts ins right after the first of words (lower case)
// that appears outside parentheses in text; "" when none does.
func insertAfterWord(text, ins string, words ...string) string {
	lx := &lexer{src: text}
	depth := 0
	for t := lx.next(); t.kind != tokEOF; t = lx.next() {
		switch t.kind {
		case tokOpen:
			depth++
		case tokClose:
			depth--
		case tokWord:
			if depth != 0 {
				continue
			}
			for _, w := range words {
				if t.wordIs(text, w) {
					return text[:t.end] + ins + text[t.end:]
				}
			}
		}
	}
	return ""
}

// appendToCode inserts ins after the last token of text that is not a
// comment or a semicolon, so that a trailing comment stays a comment.
func appendToCode(text, ins string) string {
	lx := &lexer{src: text}
	end := -1
	for t := lx.next(); t.kind != tokEOF; t = lx.next() {
		if t.kind != tokComment && t.kind != tokSemi {
			end = t.end
		}
	}
	if end < 0 {
		return ""
	}
	return text[:end] + ins + text[end:]
}

// withSemicolon ends a statement for a hint: the semicolon goes after the
// last token of code, before any trailing comment.
func withSemicolon(text string) string {
	if s := appendToCode(text, ";"); s != "" {
		return s
	}
	return text + ";"
}

// rewriteBlocker says why a statement that has a CONCURRENTLY form cannot
// be rewritten to it in this session; "" when it can.
func rewriteBlocker(c *Check) string {
	switch {
	case c.Nested:
		return "it runs inside a DO block or function, which is always a transaction"
	case c.Session.InTransaction:
		return "it runs inside a transaction block"
	case !c.Session.Alone:
		return "it is not the only statement of its query, so it runs in an implicit transaction"
	}
	return ""
}
