package sqltext

import "strings"

// With standard_conforming_strings off the server reads a backslash in
// '...' as it reads one in E'...'. Everything in pgguard past the split
// (the pre-filter, pg_query's parser, the rules' own looks at the text,
// rewrites, annotations) reads SQL with the setting on, as pg_query does.
// So a session's text is first turned into the text that, read with the
// setting on, means what the server reads with it off: an E before each
// '...' string whose body holds a backslash. The two texts have the same
// statements, words and values; E'...' means the same to the server
// under either value of the setting, so a rewrite made from the new text
// runs as the client's text would have.

// StandardText returns text, read with standard_conforming_strings off,
// as text that means the same with it on; changed is false when text is
// returned as it is (no '...' string in it holds a backslash).
func StandardText(text string) (out string, changed bool) {
	if strings.IndexByte(text, '\\') < 0 {
		return text, false
	}
	var b strings.Builder
	last := 0
	lx := Lexer{Src: text, BackslashQuote: true}
	for {
		t := lx.Next()
		if t.Kind == TokEOF {
			break
		}
		if t.Kind != TokString || text[t.Start] != '\'' || strings.IndexByte(text[t.Start:t.End], '\\') < 0 {
			continue
		}
		if !changed {
			b.Grow(len(text) + 8)
			changed = true
		}
		if t.Start > 0 && Lower(text[t.Start-1]) == 'n' && (t.Start == 1 || !IsIdentCont(text[t.Start-2])) {
			// N'...' (a national character string): its N becomes the E,
			// and the string reads as text rather than char, which
			// changes no statement's shape.
			b.WriteString(text[last : t.Start-1])
			b.WriteByte('E')
			last = t.Start
			continue
		}
		b.WriteString(text[last:t.Start])
		if t.Start > 0 && IsIdentCont(text[t.Start-1]) {
			// x'...' would become xE'...', one identifier: a space
			// keeps the word before the string a word of its own.
			b.WriteByte(' ')
		}
		b.WriteByte('E')
		last = t.Start
	}
	if !changed {
		return text, false
	}
	b.WriteString(text[last:])
	return b.String(), true
}
