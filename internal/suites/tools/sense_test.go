package tools

import (
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/pgguard/pgguard/policy"
)

// logPrefix starts every line of the server's log: the database, the
// application_name and the id of the session.
const logPrefix = "@@%d|%a|%c|"

// logged is one statement the server logged.
type logged struct {
	app, session, text string
}

// loggedStatements returns what the server logged for database db, in
// order: simple-protocol statements and extended-protocol executions.
func loggedStatements(t *testing.T, db string) []logged {
	t.Helper()
	data, err := os.ReadFile(serverLog.Name())
	if err != nil {
		t.Fatal(err)
	}
	var out []logged
	cur := -1 // index in out of the statement continuation lines belong to
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "@@")
		if !ok {
			if cur >= 0 {
				out[cur].text += "\n" + line
			}
			continue
		}
		cur = -1
		parts := strings.SplitN(rest, "|", 4)
		if len(parts) != 4 || parts[0] != db {
			continue
		}
		msg := parts[3]
		var text string
		switch {
		case strings.HasPrefix(msg, "LOG:  statement: "):
			text = strings.TrimPrefix(msg, "LOG:  statement: ")
		case strings.HasPrefix(msg, "LOG:  execute "):
			_, text, ok = strings.Cut(msg, ": ")
			if !ok {
				continue
			}
			_, text, _ = strings.Cut(text, ": ")
		default:
			continue
		}
		app := parts[1]
		if app == "[unknown]" { // the server's way to log an empty application_name
			app = ""
		}
		out = append(out, logged{app: app, session: parts[2], text: text})
		cur = len(out) - 1
	}
	return out
}

// checkSense feeds policy.ToolSense what a tool sent on the session that
// ran its first migration (the one that creates payees; a refused statement
// never reaches the server's log) before that migration, as the proxy
// would, and checks that it, or else the session's application_name, names
// the tool, as the proxy's choice does; and
// that the tool's application_name, if it sends one, does not name another.
// It logs the application_name the tool sent, which the docs record.
func checkSense(t *testing.T, db string, want policy.Tool) {
	t.Helper()
	stmts := loggedStatements(t, db)
	if len(stmts) == 0 {
		t.Fatalf("the server logged nothing for %s", db)
	}
	first := func(st logged) bool {
		text := strings.ToLower(st.text)
		return strings.Contains(text, "create table \"payees\"") || strings.Contains(text, "create table payees") ||
			strings.Contains(text, "create table if not exists payees")
	}
	session := ""
	for _, st := range stmts {
		if first(st) {
			session = st.session
			break
		}
	}
	if session == "" {
		t.Fatalf("no session of %s created payees", db)
	}
	var s policy.ToolSense
	var lastApp string
	apps := map[string]bool{}
	for _, st := range stmts {
		if st.session != session {
			continue
		}
		apps[st.app] = true
		lastApp = st.app
		if first(st) {
			break
		}
		s.Observe(st.text)
	}
	// What the proxy names (Session.tool): the ledger first, then
	// application_name.
	got, how := s.Tool(), "what it sent before its first migration"
	if got == policy.ToolUnknown {
		got, how = policy.ToolFromApplicationName(lastApp), "its application_name"
	}
	if got != want {
		var b strings.Builder
		for _, st := range stmts {
			b.WriteString(st.session + "|" + st.app + "| " + st.text + "\n")
		}
		t.Errorf("pgguard names %q before the first migration (ToolSense %q, application_name %q), want %q; the statements:\n%s",
			got, s.Tool(), lastApp, want, b.String())
	} else {
		t.Logf("pgguard names %s from %s", got, how)
	}
	var names []string
	for app := range apps {
		names = append(names, "\""+app+"\"")
		if got := policy.ToolFromApplicationName(app); got != policy.ToolUnknown && got != want {
			t.Errorf("application_name %q names %q, want %q", app, got, want)
		}
	}
	sort.Strings(names)
	t.Logf("%s sent application_name %s", want, strings.Join(names, ", "))
}
