package sqltext

// class is what the cheap pre-filter makes of a statement from its first
// keyword, without a parse tree.
type Class uint8

const (
	// ClassEmpty: no keyword at all (only comments, or a stray token).
	ClassEmpty Class = iota
	// ClassQuery: reads and inserts; never parsed unless a rule asks for a
	// keyword the statement contains.
	ClassQuery
	// ClassSession: transaction control, SET/SHOW/RESET, cursors, prepared
	// statements; treated like ClassQuery.
	ClassSession
	// ClassDML: UPDATE, DELETE, MERGE, WITH (which may hold them), EXPLAIN;
	// parsed only when a rule that looks at DML is enabled.
	ClassDML
	// ClassDDL: everything else; always parsed.
	ClassDDL
)

var firstWordClass = map[string]Class{
	"select": ClassQuery, "insert": ClassQuery, "values": ClassQuery, "table": ClassQuery,
	"copy": ClassQuery, "call": ClassQuery, "declare": ClassQuery, "fetch": ClassQuery,
	"move": ClassQuery, "close": ClassQuery,

	"begin": ClassSession, "start": ClassSession, "commit": ClassSession, "end": ClassSession,
	"rollback": ClassSession, "abort": ClassSession, "savepoint": ClassSession,
	"release": ClassSession, "prepare": ClassSession, "execute": ClassSession,
	"deallocate": ClassSession, "discard": ClassSession, "set": ClassSession,
	"reset": ClassSession, "show": ClassSession, "listen": ClassSession,
	"unlisten": ClassSession, "notify": ClassSession,

	"update": ClassDML, "delete": ClassDML, "merge": ClassDML, "with": ClassDML,
	"explain": ClassDML,
}

// Classify runs the pre-filter on one statement.
func Classify(text string) Class {
	t, _ := FirstWord(text)
	if t.Kind != TokWord {
		if t.Kind == TokEOF {
			return ClassEmpty
		}
		return ClassDDL
	}
	if t.End-t.Start > 10 {
		return ClassDDL
	}
	var buf [10]byte
	w := buf[:t.End-t.Start]
	for i := range w {
		w[i] = Lower(text[t.Start+i])
	}
	if c, ok := firstWordClass[string(w)]; ok {
		switch {
		case c == ClassSession && prepareDML(text, string(w)):
			return ClassDML
		case c == ClassQuery && writesRows(text, string(w)):
			return ClassDML
		case string(w) == "with":
			return classifyWith(text)
		}
		return c
	}
	return ClassDDL
}

// classifyWith classifies a statement that starts with WITH by the verbs
// of its parts, without a parse: a verb is the first word after an opening
// parenthesis (a CTE's body, a sub-select) or right after a closing one at
// the outermost level (the main statement after the CTE list). A WITH
// whose verbs include UPDATE, DELETE or MERGE is ClassDML (a
// data-modifying CTE, which the DML rules look at); one whose verbs are
// reads or INSERT is ClassQuery, like a SELECT or an INSERT alone; one
// with more INTOs than INSERTs may be WITH ... SELECT INTO, which creates
// a table: ClassDDL. A word that only looks like a verb (a column
// named update in parentheses) costs a parse, never a pass.
func classifyWith(text string) Class {
	lx := Lexer{Src: text}
	depth := 0
	verbNext := false // the next word is in a verb position
	dml := false
	intos, inserts := 0, 0
	for {
		t := lx.Next()
		switch t.Kind {
		case TokEOF, TokSemi:
			switch {
			case dml:
				return ClassDML
			case intos > inserts:
				return ClassDDL
			}
			return ClassQuery
		case TokComment:
			continue
		case TokOpen:
			depth++
			verbNext = true
			continue
		case TokClose:
			depth--
			verbNext = depth <= 0
			continue
		case TokWord:
			switch {
			case t.WordIs(text, "into"):
				intos++
			case !verbNext:
			case t.WordIs(text, "update"), t.WordIs(text, "delete"), t.WordIs(text, "merge"):
				dml = true
			case t.WordIs(text, "insert"):
				inserts++
			}
		}
		verbNext = false
	}
}

// HasWordInto reports whether a statement has the word INTO outside
// strings, quoted identifiers and comments (SELECT ... INTO creates a
// table).
func HasWordInto(text string) bool {
	lx := Lexer{Src: text}
	for {
		switch t := lx.Next(); t.Kind {
		case TokEOF:
			return false
		case TokWord:
			if t.WordIs(text, "into") {
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
	return ContainsFold(text, "update") || ContainsFold(text, "delete") || ContainsFold(text, "merge")
}

// writesRows reports whether a COPY or an INSERT may change existing rows:
// COPY (UPDATE | DELETE | MERGE ... RETURNING ...) TO, and INSERT ...
// SELECT ... ON CONFLICT DO UPDATE (an upsert of VALUES changes as many
// rows as it lists: it stays on the fast path).
func writesRows(text, first string) bool {
	switch first {
	case "copy":
		return ContainsFold(text, "update") || ContainsFold(text, "delete") || ContainsFold(text, "merge")
	case "insert":
		return ContainsFold(text, "conflict") && ContainsFold(text, "update") && ContainsFold(text, "select")
	}
	return false
}

// ChangesRows reports, without parsing, whether sql may be a statement
// that changes existing rows (UPDATE, DELETE, MERGE, a WITH that holds
// one, COPY of one, an upsert from a SELECT, EXPLAIN or PREPARE of one).
func ChangesRows(sql string) bool {
	return Classify(sql) == ClassDML
}

// IsDDL reports, without parsing, whether sql starts with a statement that
// the policy parses in full: anything but reads, writes, transaction
// control and session commands (SET, SHOW, RESET, cursors, prepared
// statements, LISTEN/NOTIFY). The proxy can use it to decide whether a
// statement deserves a DDL duration metric or the engine's attention.
func IsDDL(sql string) bool {
	return Classify(sql) == ClassDDL
}
