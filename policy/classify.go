package policy

// class is what the cheap pre-filter makes of a statement from its first
// keyword, without a parse tree.
type class uint8

const (
	// classEmpty: no keyword at all (only comments, or a stray token).
	classEmpty class = iota
	// classQuery: reads and inserts; never parsed unless a rule asks for a
	// keyword the statement contains.
	classQuery
	// classSession: transaction control, SET/SHOW/RESET, cursors, prepared
	// statements; treated like classQuery.
	classSession
	// classDML: UPDATE, DELETE, MERGE, WITH (which may hold them), EXPLAIN;
	// parsed only when a rule that looks at DML is enabled.
	classDML
	// classDDL: everything else; always parsed.
	classDDL
)

var firstWordClass = map[string]class{
	"select": classQuery, "insert": classQuery, "values": classQuery, "table": classQuery,
	"copy": classQuery, "call": classQuery, "declare": classQuery, "fetch": classQuery,
	"move": classQuery, "close": classQuery,

	"begin": classSession, "start": classSession, "commit": classSession, "end": classSession,
	"rollback": classSession, "abort": classSession, "savepoint": classSession,
	"release": classSession, "prepare": classSession, "execute": classSession,
	"deallocate": classSession, "discard": classSession, "set": classSession,
	"reset": classSession, "show": classSession, "listen": classSession,
	"unlisten": classSession, "notify": classSession,

	"update": classDML, "delete": classDML, "merge": classDML, "with": classDML,
	"explain": classDML,
}

// classify runs the pre-filter on one statement.
func classify(text string) class {
	t, _ := firstWord(text)
	if t.kind != tokWord {
		if t.kind == tokEOF {
			return classEmpty
		}
		return classDDL
	}
	if t.end-t.start > 10 {
		return classDDL
	}
	var buf [10]byte
	w := buf[:t.end-t.start]
	for i := range w {
		w[i] = lower(text[t.start+i])
	}
	if c, ok := firstWordClass[string(w)]; ok {
		switch {
		case c == classSession && prepareDML(text, string(w)):
			return classDML
		case c == classQuery && writesRows(text, string(w)):
			return classDML
		case string(w) == "with":
			return classifyWith(text)
		}
		return c
	}
	return classDDL
}

// classifyWith classifies a statement that starts with WITH by the verbs
// of its parts, without a parse: a verb is the first word after an opening
// parenthesis (a CTE's body, a sub-select) or right after a closing one at
// the outermost level (the main statement after the CTE list). A WITH
// whose verbs include UPDATE, DELETE or MERGE is classDML (a
// data-modifying CTE, which the DML rules look at); one whose verbs are
// reads or INSERT is classQuery, like a SELECT or an INSERT alone; one
// with more INTOs than INSERTs may be WITH ... SELECT INTO, which creates
// a table: classDDL. A word that only looks like a verb (a column
// named update in parentheses) costs a parse, never a pass.
func classifyWith(text string) class {
	lx := lexer{src: text}
	depth := 0
	verbNext := false // the next word is in a verb position
	dml := false
	intos, inserts := 0, 0
	for {
		t := lx.next()
		switch t.kind {
		case tokEOF, tokSemi:
			switch {
			case dml:
				return classDML
			case intos > inserts:
				return classDDL
			}
			return classQuery
		case tokComment:
			continue
		case tokOpen:
			depth++
			verbNext = true
			continue
		case tokClose:
			depth--
			verbNext = depth <= 0
			continue
		case tokWord:
			switch {
			case t.wordIs(text, "into"):
				intos++
			case !verbNext:
			case t.wordIs(text, "update"), t.wordIs(text, "delete"), t.wordIs(text, "merge"):
				dml = true
			case t.wordIs(text, "insert"):
				inserts++
			}
		}
		verbNext = false
	}
}

// hasWordInto reports whether a statement has the word INTO outside
// strings, quoted identifiers and comments (SELECT ... INTO creates a
// table).
func hasWordInto(text string) bool {
	lx := lexer{src: text}
	for {
		switch t := lx.next(); t.kind {
		case tokEOF:
			return false
		case tokWord:
			if t.wordIs(text, "into") {
				return true
			}
		}
	}
}

// prepareDML reports whether a PREPARE statement prepares an UPDATE,
// DELETE or MERGE (PREPARE name [(types)] AS stmt).
func prepareDML(text, first string) bool {
	if first != "prepare" {
		return false
	}
	return containsFold(text, "update") || containsFold(text, "delete") || containsFold(text, "merge")
}

// writesRows reports whether a COPY or an INSERT may change existing rows:
// COPY (UPDATE | DELETE | MERGE ... RETURNING ...) TO, and INSERT ...
// SELECT ... ON CONFLICT DO UPDATE (an upsert of VALUES changes as many
// rows as it lists: it stays on the fast path).
func writesRows(text, first string) bool {
	switch first {
	case "copy":
		return containsFold(text, "update") || containsFold(text, "delete") || containsFold(text, "merge")
	case "insert":
		return containsFold(text, "conflict") && containsFold(text, "update") && containsFold(text, "select")
	}
	return false
}

// ChangesRows reports, without parsing, whether sql may be a statement
// that changes existing rows (UPDATE, DELETE, MERGE, a WITH that holds
// one, COPY of one, an upsert from a SELECT, EXPLAIN or PREPARE of one).
func ChangesRows(sql string) bool {
	return classify(sql) == classDML
}

// IsDDL reports, without parsing, whether sql starts with a statement that
// the policy parses in full: anything but reads, writes, transaction
// control and session commands (SET, SHOW, RESET, cursors, prepared
// statements, LISTEN/NOTIFY). The proxy can use it to decide whether a
// statement deserves a DDL duration metric or the engine's attention.
func IsDDL(sql string) bool {
	return classify(sql) == classDDL
}
