package policy

import (
	"fmt"
	"github.com/pgguard/pgguard/policy/sqltext"
	"strings"
)

// annotation is one pgguard:allow comment.
type annotation struct {
	rules  []string
	reason string
}

const annotationPrefix = "pgguard:allow"

// annotations finds the pgguard:allow comments of a statement. Problems
// (no reason, unknown rule ids) are returned as messages.
func annotations(text string, known func(string) bool) (out []annotation, problems []string) {
	if !sqltext.ContainsFold(text, annotationPrefix) {
		return nil, nil
	}
	lx := sqltext.Lexer{Src: text}
	for t := lx.Next(); t.Kind != sqltext.TokEOF; t = lx.Next() {
		if t.Kind != sqltext.TokComment {
			continue
		}
		body := text[t.Start:t.End]
		if strings.HasPrefix(body, "/*") {
			body = strings.TrimSuffix(strings.TrimPrefix(body, "/*"), "*/")
		} else {
			body = strings.TrimPrefix(body, "--")
		}
		body = strings.TrimSpace(body)
		if !strings.HasPrefix(body, annotationPrefix) {
			continue
		}
		a, problem := parseAnnotation(strings.TrimPrefix(body, annotationPrefix), known)
		if problem != "" {
			problems = append(problems, problem)
			continue
		}
		out = append(out, a)
	}
	return out, problems
}

// parseAnnotation parses ` <id>[,<id>...] reason="..."`.
func parseAnnotation(s string, known func(string) bool) (annotation, string) {
	var a annotation
	if s == "" || (s[0] != ' ' && s[0] != '\t') {
		return a, "a pgguard:allow annotation must name rules: -- pgguard:allow <rule-id>[,<rule-id>] reason=\"...\""
	}
	s = strings.TrimSpace(s)
	ids, rest, _ := strings.Cut(s, " ")
	for _, id := range strings.Split(ids, ",") {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if !known(id) {
			return a, fmt.Sprintf("the pgguard:allow annotation names unknown rule %q", id)
		}
		a.rules = append(a.rules, id)
	}
	if len(a.rules) == 0 {
		return a, "a pgguard:allow annotation must name rules: -- pgguard:allow <rule-id>[,<rule-id>] reason=\"...\""
	}
	rest = strings.TrimSpace(rest)
	reason, ok := strings.CutPrefix(rest, `reason="`)
	end := strings.IndexByte(reason, '"')
	if !ok || end < 0 || strings.TrimSpace(reason[:end]) == "" {
		return a, fmt.Sprintf("the pgguard:allow annotation for %s has no reason: add reason=\"why this is safe\"", strings.Join(a.rules, ","))
	}
	a.reason = reason[:end]
	return a, ""
}

// allows returns the reason of the first annotation naming id.
func allowsRule(as []annotation, id string) (string, bool) {
	for _, a := range as {
		for _, r := range a.rules {
			if r == id {
				return a.reason, true
			}
		}
	}
	return "", false
}
