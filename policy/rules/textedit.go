package rules

import "github.com/pgguard/pgguard/policy"
import "github.com/pgguard/pgguard/policy/sqltext"

// Small edits of a statement's original text for rewrites, so that the
// rewritten statement keeps the user's spelling, names and comments.

// insertAfterWord inserts ins right after the first of words (lower case)
// that appears outside parentheses in text; "" when none does.
func insertAfterWord(text, ins string, words ...string) string {
	lx := &sqltext.Lexer{Src: text}
	depth := 0
	for t := lx.Next(); t.Kind != sqltext.TokEOF; t = lx.Next() {
		switch t.Kind {
		case sqltext.TokOpen:
			depth++
		case sqltext.TokClose:
			depth--
		case sqltext.TokWord:
			if depth != 0 {
				continue
			}
			for _, w := range words {
				if t.WordIs(text, w) {
					return text[:t.End] + ins + text[t.End:]
				}
			}
		}
	}
	return ""
}

// appendToCode inserts ins after the last token of text that is not a
// comment or a semicolon, so that a trailing comment stays a comment.
func appendToCode(text, ins string) string {
	lx := &sqltext.Lexer{Src: text}
	end := -1
	for t := lx.Next(); t.Kind != sqltext.TokEOF; t = lx.Next() {
		if t.Kind != sqltext.TokComment && t.Kind != sqltext.TokSemi {
			end = t.End
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
func rewriteBlocker(c *policy.Check) string {
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
