package main

import (
	"regexp"
	"strings"
)

// tidier cleans psql's transcript of two repetitions that pgguard's
// messages carry for tools less capable than psql, line by line:
//
//   - A refusal's DETAIL ends with "Safe recipe:" and the recipe, which
//     the HINT repeats (sequelize-cli prints only the message and the
//     detail). psql shows both, so the copy in the DETAIL is dropped when the
//     HINT starts with the same line.
//   - A rewrite's NOTICE carries as HINT the recipe for running the statement
//     by hand; after a rewrite that already ran it, it reads like an order to
//     run it again, so it is dropped.
//
// Only the display changes; the messages pgguard sends are untouched.
type tidier struct {
	emit func(line string)

	pgguard      bool     // the current message is pgguard's
	rewritten    string   // the statement the current NOTICE says ran instead; "" if none
	recipe       []string // the DETAIL's recipe, held back until the HINT shows
	holding      bool     // inside the DETAIL's recipe
	skippingHint bool     // inside a rewrite NOTICE's HINT
}

// messageStart is the first line of an error, warning or notice as psql -f
// prints it.
var (
	messageStart = regexp.MustCompile(`^psql:[^ ]*:\d+: [A-Z]+:  `)
	rewriteStart = regexp.MustCompile(`^psql:[^ ]*:\d+: NOTICE:  pgguard: [a-z0-9-]+: rewritten [^:]*: (.*)$`)
)

const hintPrefix = "HINT:  "

func (t *tidier) line(l string) {
	if t.skippingHint {
		if strings.HasPrefix(l, "-- ") {
			return
		}
		t.skippingHint = false
		if l == t.rewritten+";" {
			return
		}
	}
	if t.holding {
		switch {
		case strings.HasPrefix(l, hintPrefix):
			t.holding = false
			if len(t.recipe) == 0 || t.recipe[0] != strings.TrimPrefix(l, hintPrefix) {
				t.release()
			}
			t.recipe = nil
			t.emit(l)
			return
		case messageStart.MatchString(l):
			t.holding = false
			t.release()
			t.recipe = nil
		default:
			t.recipe = append(t.recipe, l)
			return
		}
	}
	if messageStart.MatchString(l) {
		t.pgguard = strings.Contains(l, ":  pgguard: ")
		t.rewritten = ""
		if m := rewriteStart.FindStringSubmatch(l); m != nil {
			t.rewritten = m[1]
		}
		t.emit(l)
		return
	}
	switch {
	case t.pgguard && l == "Safe recipe:":
		t.holding = true
		return
	case t.rewritten != "" && strings.HasPrefix(l, hintPrefix):
		t.skippingHint = l != hintPrefix+t.rewritten+";"
		return
	}
	t.emit(l)
}

// flush releases whatever is held back, at the end of the transcript.
func (t *tidier) flush() {
	if t.holding {
		t.release()
		t.holding, t.recipe = false, nil
	}
}

func (t *tidier) release() {
	t.emit("Safe recipe:")
	for _, r := range t.recipe {
		t.emit(r)
	}
}
