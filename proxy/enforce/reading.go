package enforce

import (
	"context"
	"github.com/pgguard/pgguard/policy/sqltext"
	"strings"

	"github.com/pgguard/pgguard/internal/wire"
	"github.com/pgguard/pgguard/policy"
)

// How the server reads a statement depends on two settings of the moment
// it reads it: standard_conforming_strings (whether a backslash escapes a
// quote in '...') and client_encoding (which bytes make one character).
// The server reports both in ParameterStatus, before the ReadyForQuery of
// the statement that changed them; within one Query it reads the whole
// string with the values in force when the Query arrived. So a message is
// read right from State when nothing before it is unanswered. Behind
// unanswered messages, any of which may have changed a setting (SET, RESET
// ALL, set_config in a function or a trigger...), only text that no
// setting reads differently is judged at once: text with neither a
// backslash nor a byte above 0x7f. Other text waits for the answers
// (Query), or, inside an extended-protocol batch, whose ParameterStatus
// comes only at its Sync, is judged under every reading and the strictest
// verdict taken.

// reading is a statement text as the server would read it under one
// combination of the two settings.
type reading struct {
	text           string
	backslashQuote bool
}

// settingSensitive reports whether the server's reading of text can depend
// on standard_conforming_strings or client_encoding.
func settingSensitive(text string) bool {
	return strings.IndexByte(text, '\\') >= 0 || !sqltext.IsASCII(text)
}

// loopMayJudge reports whether the event loop's fast path may read text
// with the settings State holds: they are current for it, and no
// conversion is needed.
func (m *Machine) loopMayJudge(text string) bool {
	if !settingSensitive(text) {
		return true
	}
	if m.pending.Load() > 0 || m.unsynced {
		return false
	}
	return sqltext.IsASCII(text) || !sqltext.ConvertsEncoding(m.state.Parameter("client_encoding"))
}

// clientEncodings are the readings of client_encoding a batch's later
// message may be under: ASCII-safe ones (read alike) and each client-only
// one that converts.
var clientEncodings = append([]string{"UTF8"}, sqltext.ClientOnlyEncodings()...)

// readings returns how the server may read raw: first under the settings
// State holds, then, when settingsMoved, under every other combination
// that differs and that the server would accept. An error means pgguard
// cannot read raw under the session's own client_encoding.
func (m *Machine) readings(raw string, settingsMoved bool) ([]reading, error) {
	enc := m.state.Parameter("client_encoding")
	bq := m.state.BackslashQuote()
	text, err := sqltext.ClientText(enc, raw)
	if err != nil {
		return nil, err
	}
	out := []reading{{text, bq}}
	if !settingsMoved || !settingSensitive(raw) {
		return out, nil
	}
	texts := []string{text}
	if !sqltext.IsASCII(raw) {
		for _, e := range clientEncodings {
			if t, err := sqltext.ClientText(e, raw); err == nil && !contains(texts, t) {
				texts = append(texts, t)
			}
		}
	}
	for _, t := range texts {
		for _, b := range []bool{bq, !bq} {
			if (t != text || b != bq) && (b == bq || strings.IndexByte(t, '\\') >= 0) {
				out = append(out, reading{t, b})
			}
		}
	}
	return out, nil
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// plainAll reports whether text takes the fast path under every reading.
func (m *Machine) plainAll(eng *policy.Engine, rs []reading) (statements int, plain bool) {
	for i, r := range rs {
		n, ok := m.plainText(eng, r.text, r.backslashQuote)
		if !ok {
			return 0, false
		}
		if i == 0 {
			statements = n
		}
	}
	return statements, true
}

// strictest judges each reading with decide and returns the decisions on
// the session's own reading, unless another reading's are stricter: then
// those, so that a statement another reading would refuse is refused.
func strictest(rs []reading, decide func(reading) []policy.StatementDecision) []policy.StatementDecision {
	best := decide(rs[0])
	for _, r := range rs[1:] {
		if ds := decide(r); severity(ds) > severity(best) {
			best = ds
		}
	}
	return best
}

// severity orders decision sets: a refusal above a rewrite above a
// warning above care (DDL) above nothing.
func severity(ds []policy.StatementDecision) int {
	s := 0
	for _, d := range ds {
		v := 0
		if d.Decision.DDL || len(d.Decision.Findings) > 0 {
			v = 1
		}
		if a := 1 + int(d.Decision.Action); d.Decision.Action != policy.Allow && a > v {
			v = a
		}
		s = max(s, v)
	}
	return s
}

// decideQuery judges a Query's text under each reading (DecideQuery).
func (m *Machine) decideQuery(ctx context.Context, eng *policy.Engine, rs []reading) []policy.StatementDecision {
	return strictest(rs, func(r reading) []policy.StatementDecision {
		sc := m.policyContext(true)
		sc.BackslashQuote = r.backslashQuote
		ds, _ := eng.DecideQuery(ctx, r.text, sc)
		return ds
	})
}

// unreadable is the refusal of text pgguard cannot read in the session's
// client_encoding.
func unreadable() *wire.PGError {
	return &wire.PGError{Severity: "ERROR", Code: "22021",
		Message: "pgguard: the statement is not text pgguard can read with certainty in the session's client_encoding",
		Detail:  "pgguard judges each statement as the server reads it after converting it from client_encoding; nothing of this one ran.",
		Hint:    "Check the client's encoding, or send the statement in UTF8.",
	}
}

// toClient returns a rewrite pgguard made in the session's
// client_encoding; ok is false when it cannot be written there.
func (m *Machine) toClient(sql string) (string, bool) {
	out, err := sqltext.ServerText(m.state.Parameter("client_encoding"), sql)
	return out, err == nil
}

// unreadableFinding refuses a statement whose rewrite cannot be written in
// the session's client_encoding.
func unreadableFinding() *policy.Finding {
	return &policy.Finding{RuleID: policy.ParseErrorRule, Action: policy.Reject,
		Message: "pgguard cannot write its rewrite of this statement in the session's client_encoding, so it refuses it rather than run it unrewritten."}
}
