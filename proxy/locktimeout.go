package proxy

import (
	"fmt"
	"strings"
	"time"

	"github.com/pgguard/pgguard/policy"

	"github.com/pgguard/pgguard/internal/wire"
)

// applyLockTimeout gives the session the policy's lock_timeout as a startup
// parameter when lock_timeout_scope is session: no extra round trip, and it
// becomes the session default that RESET returns to. A client may ask for
// a lower value in the startup message (as a parameter or in options), but
// not for 0 or more than the allowed maximum. What a session sets later is
// checked with the server before each statement that blocks writes, by the
// machine (package enforce). Under scope ddl (the default) the session
// keeps what it asked for: only statements that block writes get the
// policy's lock_timeout, from the machine, one at a time.
func (s *Session) applyLockTimeout(st *Startup) *wire.PGError {
	cfg := s.srv.cfg.Policy.Engine().Config()
	def, max := time.Duration(cfg.LockTimeout), time.Duration(cfg.MaxLockTimeout)
	if def <= 0 || cfg.LockTimeoutScope != policy.ScopeSession {
		return nil
	}
	refuse := func(where, value string) *wire.PGError {
		return &wire.PGError{Severity: "FATAL", Code: wire.CodeInsufficientPrivilege,
			Message: fmt.Sprintf("pgguard: lock_timeout=%s in the startup %s is not allowed", value, where),
			Detail:  fmt.Sprintf("pgguard gives every session lock_timeout=%s; a client may lower it, but not turn it off or raise it above %s.", def, max),
			Hint:    "Remove lock_timeout from the connection settings, or set it between 1ms and " + max.String() + ".",
		}
	}
	check := func(where, value string) *wire.PGError {
		d, err := policy.ParseLockTimeout(value)
		if err != nil || d <= 0 || (max > 0 && d > max) {
			return refuse(where, value)
		}
		return nil
	}
	if v, ok := startupParam(st, "lock_timeout"); ok {
		if e := check("parameters", v); e != nil {
			return e
		}
		return nil
	}
	if v, ok := optionsSetting(st.Get("options"), "lock_timeout"); ok {
		return check("options", v)
	}
	st.Set("lock_timeout", fmt.Sprintf("%dms", def.Milliseconds()))
	return nil
}

func startupParam(st *Startup, name string) (string, bool) {
	for _, p := range st.Params {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// optionsSetting finds "-c name=value" or "--name=value" in a startup
// options string (words separated by spaces, backslash escapes a space).
// The last occurrence wins, as in PostgreSQL.
func optionsSetting(options, name string) (string, bool) {
	var words []string
	var cur strings.Builder
	for i := 0; i < len(options); i++ {
		c := options[i]
		switch {
		case c == '\\' && i+1 < len(options):
			i++
			cur.WriteByte(options[i])
		case c == ' ' || c == '\t' || c == '\n':
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	value, found := "", false
	for i, w := range words {
		var kv string
		switch {
		case w == "-c" && i+1 < len(words):
			kv = words[i+1]
		case strings.HasPrefix(w, "-c") && len(w) > 2:
			kv = w[2:]
		case strings.HasPrefix(w, "--"):
			kv = w[2:]
		default:
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.ReplaceAll(strings.ToLower(k), "-", "_") == name {
			value, found = v, true
		}
	}
	return value, found
}
