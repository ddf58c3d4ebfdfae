package enforce

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pgguard/pgguard/internal/wire"
)

// State is what a session knows about itself, for the policy layer and for
// logs. Its getters are safe to call from any goroutine.
type State struct {
	// Target is the name of the target the client connected to.
	Target string
	// ClientAddr is the client's remote address.
	ClientAddr string
	// User, Database and ApplicationName come from the startup message.
	// ApplicationName stays the startup packet's (the connection's log
	// line); what the session is called now, after a SET application_name
	// (pgjdbc sends its name so), is CurrentApplicationName.
	User            string
	Database        string
	ApplicationName string

	// pid and key are the server's BackendKeyData, used to cancel the
	// running statement when the client goes away mid-statement. Written
	// once during authentication, before the relay starts.
	pid uint32
	key []byte

	txStatus atomic.Uint32

	mu     sync.Mutex
	params map[string]string
	// version and timeZone are kept parsed: the policy asks per statement.
	version  int
	timeZone string
	// backslashQuote: the server reported standard_conforming_strings off.
	backslashQuote atomic.Bool
	// appName is the application_name the server last reported, nil
	// before any report.
	appName atomic.Pointer[string]
}

// CurrentApplicationName is the session's application_name as the server
// last reported it in a ParameterStatus (after the startup packet or a
// SET, RESET or rolled-back SET of it), or the startup packet's before
// any report. Profiles, tool detection and each statement's audit record
// use it.
func (s *State) CurrentApplicationName() string {
	if p := s.appName.Load(); p != nil {
		return *p
	}
	return s.ApplicationName
}

// BackslashQuote reports whether the server said standard_conforming_strings
// is off: a backslash then escapes a quote in '...'.
func (s *State) BackslashQuote() bool { return s.backslashQuote.Load() }

// TxStatus is the transaction status from the last ReadyForQuery: 'I' idle,
// 'T' in a transaction block, 'E' in a failed transaction block.
func (s *State) TxStatus() byte { return byte(s.txStatus.Load()) }

// InTransaction reports whether the session is inside a transaction block.
func (s *State) InTransaction() bool {
	st := s.TxStatus()
	return st == 'T' || st == 'E'
}

// SetTxStatus records the status of a ReadyForQuery.
func (s *State) SetTxStatus(b byte) { s.txStatus.Store(uint32(b)) }

// SetBackendKey records the server's BackendKeyData. It is called during
// authentication, before anything reads the key.
func (s *State) SetBackendKey(pid uint32, key []byte) {
	s.pid, s.key = pid, append([]byte(nil), key...)
}

// BackendKey returns the server's BackendKeyData (pid 0: none was sent).
func (s *State) BackendKey() (pid uint32, key []byte) { return s.pid, s.key }

// Parameter returns a run-time parameter the server reported with
// ParameterStatus (server_version, TimeZone, ...).
func (s *State) Parameter(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.params[name]
}

// TimeZone is the session's TimeZone as the server reports it.
func (s *State) TimeZone() string {
	_, tz := s.versionAndTimeZone()
	return tz
}

// ServerVersion is the server's version as server_version_num would give
// it (150018 for 15.18), derived from the reported server_version; 0 when unknown.
func (s *State) ServerVersion() int {
	v, _ := s.versionAndTimeZone()
	return v
}

// versionAndTimeZone returns ServerVersion and TimeZone in one look.
func (s *State) versionAndTimeZone() (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version, s.timeZone
}

func parseServerVersion(v string) int {
	if i := strings.IndexFunc(v, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	major, err := strconv.Atoi(parts[0])
	if err != nil || major <= 0 {
		return 0
	}
	minor := 0
	if len(parts) > 1 {
		minor, _ = strconv.Atoi(parts[1])
	}
	if major >= 10 {
		return major*10000 + minor
	}
	// 9.6.24 → 90624
	patch := 0
	if len(parts) > 2 {
		patch, _ = strconv.Atoi(parts[2])
	}
	return major*10000 + minor*100 + patch
}

// SetParameter records a ParameterStatus body (name NUL value NUL).
func (s *State) SetParameter(body []byte) {
	name, rest, ok := wire.CString(body)
	if !ok {
		return
	}
	value, _, ok := wire.CString(rest)
	if !ok {
		return
	}
	s.mu.Lock()
	if s.params == nil {
		s.params = make(map[string]string)
	}
	s.params[name] = value
	switch name {
	case "server_version":
		s.version = parseServerVersion(value)
	case "TimeZone":
		s.timeZone = value
	case "standard_conforming_strings":
		s.backslashQuote.Store(value == "off")
	case "application_name":
		s.appName.Store(&value)
	}
	s.mu.Unlock()
}
