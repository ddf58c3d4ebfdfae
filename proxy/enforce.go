package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pgguard/pgguard/policy"

	"github.com/pgguard/pgguard/internal/wire"

	"github.com/pgguard/pgguard/internal/observe"
)

// rejectMarker is a token that is a syntax error wherever it stands. A
// refused statement is replaced by it, so the server itself fails the
// statement at the same point of the protocol, with its own rules for
// transaction blocks, implicit transactions and pipelines; the proxy then
// swaps the server's error for its own. The random part keeps a client from
// forging it.
var rejectMarker = func() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "pgguard_refused_" + hex.EncodeToString(b)
}()

func (s *Session) enforcing() bool { return s.srv.cfg.Policy != nil }

// policyContext describes the session for the engine.
// The engine copies what it keeps, so one Context per session is reused;
// only the client-to-server loop calls this.
func (s *Session) policyContext(alone bool) *policy.Context {
	sc := &s.pctx
	if sc.CreatedTables == nil {
		*sc = policy.Context{
			CreatedTables:       s.tx.Created,
			NotValidConstraints: s.tx.NotValidLock,
			User:                s.state.User,
			Database:            s.state.Database,
			ApplicationName:     s.state.ApplicationName,
			Profile:             s.target.Profile,
		}
		// Rule large-dml refuses an UPDATE or DELETE of a table that an
		// earlier statement of the transaction locked ACCESS EXCLUSIVE, as
		// pgguard lint does; without this the proxy never knew of the lock.
		sc.ExclusiveTables = s.tx.Exclusive
	}
	sc.Tool = s.tools.Tool()
	if sc.Tool == policy.ToolUnknown {
		sc.Tool = policy.ToolFromApplicationName(s.state.ApplicationName)
	}
	sc.BackslashQuote = s.state.BackslashQuote()
	sc.InTransaction = s.state.InTransaction() || s.unsynced
	sc.Alone = alone && !s.unsynced
	sc.ServerVersion, sc.TimeZone = s.state.VersionAndTimeZone()
	sc.Catalog = nil
	if s.pending.Load() == 0 && !s.unsynced && s.state.TxStatus() != 'E' {
		sc.Catalog = &s.catalog
	}
	return sc
}

// readInspected reads the body of a Query, Parse or Bind message whole.
// Memory grows with the bytes that arrive, not with the length the client
// declared; a small buffer is kept for the next message. A body longer
// than Limits.MaxStatementMessage is skipped and errTooLong returned.
func (s *Session) readInspected(n int) ([]byte, error) {
	if n > s.srv.cfg.Limits.MaxStatementMessage {
		if _, err := s.cr.Discard(n); err != nil {
			return nil, err
		}
		return nil, errTooLong
	}
	body, err := wire.ReadGrowing(s.cr, n, s.qbuf)
	if cap(body) <= 64<<10 {
		s.qbuf = body
	}
	return body, err
}

// errTooLong is a statement message over Limits.MaxStatementMessage.
var errTooLong = errors.New("statement message too long")

// refuseTooLong answers a Query or Parse that was too long to judge: the
// server fails a refusal marker in its place, as for any refused statement,
// so the session goes on in step.
func (s *Session) refuseTooLong(typ wire.ClientMsg, n int) error {
	e := &wire.PGError{Severity: "ERROR", Code: "54000",
		Message: fmt.Sprintf("pgguard: statement message of %d bytes is longer than pgguard judges (%d)", n, s.srv.cfg.Limits.MaxStatementMessage),
		Detail:  "pgguard reads each statement whole to judge it before it reaches the server; nothing of this one ran.",
		Hint:    "Split the statement (batch large INSERTs, or load data with COPY, which streams), or raise --max-statement-message.",
	}
	var sp *syncPoint
	if typ == wire.ClientParse {
		sp = s.batchPoint()
	} else {
		sp = s.nextSpecial()
	}
	s.amend(sp, func(sp *syncPoint) {
		if sp.swap == nil {
			sp.swap, sp.marker = e, rejectMarker
		}
	})
	if typ == wire.ClientQuery {
		s.onSync()
		return s.send(wire.Frame(wire.ClientQuery, queryBody(rejectMarker)))
	}
	s.unsynced = true
	return s.sendMessage(wire.ClientParse, parseBody("", rejectMarker, nil))
}

// onQuery judges a simple-protocol Query and sends the server what the
// decision says: the Query itself, its rewrite, or the refusal marker.
func (s *Session) onQuery(n int) error {
	body, err := s.readInspected(n)
	if err == errTooLong {
		return s.refuseTooLong(wire.ClientQuery, n)
	}
	if err != nil {
		return err
	}
	if len(body) == 0 || body[len(body)-1] != 0 {
		return &wire.ProtocolError{Msg: "invalid Query message: not NUL-terminated"}
	}
	eng := s.srv.cfg.Policy.Engine()
	text := wire.BytesView(body[:len(body)-1])
	s.tools.Observe(text)
	advisory := policy.WaitsForAdvisoryLock(text)
	plainCheck := eng.Plain
	if s.state.BackslashQuote() {
		plainCheck = eng.PlainBackslash
	}
	// While the transaction holds an ACCESS EXCLUSIVE lock, every UPDATE
	// and DELETE is judged (policy.HoldsExclusive): no fast path.
	if n, plain := plainCheck(text); plain && !advisory && !s.tx.Exclusive("", "") {
		// Application traffic: nothing to judge, nothing allocated.
		s.srv.hooks().StatementsInspected(s.target.Name, 0, n)
		if ev := s.ledgerEvent(text); ev != nil {
			s.amend(s.nextSpecial(), func(sp *syncPoint) { sp.events = append(sp.events, ev) })
		}
		s.onSync()
		return s.sendMessage(wire.ClientQuery, body)
	}
	sql := string(body[:len(body)-1])
	ctx := context.Background()
	ds, _ := eng.DecideQuery(ctx, sql, s.policyContext(true))
	if (needsCare(ds) || advisory) && s.pending.Load() > 0 {
		// Judge again once the statements before it are answered: the
		// transaction status is stale while they run.
		if !s.waitIdle() {
			return nil
		}
		ds, _ = eng.DecideQuery(ctx, sql, s.policyContext(true))
	}
	idle := !s.state.InTransaction() && s.batch == nil
	if !needsCare(ds) {
		if advisory && idle && len(ds) == 1 {
			return s.runLifted(verdictOf(ds), nil, wire.Frame(wire.ClientQuery, body))
		}
		// The common case: nothing to do but count and pass it on.
		s.srv.hooks().StatementsInspected(s.target.Name, 0, len(ds))
		// A ledger INSERT judged in full (the transaction holds an ACCESS
		// EXCLUSIVE lock) still records its migration.
		if ev := s.ledgerEvent(sql); ev != nil {
			s.amend(s.nextSpecial(), func(sp *syncPoint) { sp.events = append(sp.events, ev) })
		}
		s.onSync()
		return s.sendMessage(wire.ClientQuery, body)
	}
	v := verdictOf(ds)
	if f := lockTimeoutOrder(ds, s.batchChangesLockTimeout); v.reject == nil && f != nil {
		v.reject, v.rejects = f, []policy.Finding{*f}
	}
	events := []*observe.StatementEvent{s.event(v, sql)}
	switch {
	case v.reject != nil:
		s.amend(s.nextSpecial(), func(sp *syncPoint) {
			if sp.swap == nil {
				sp.swap, sp.marker = s.refusal(v), rejectMarker
			}
			sp.events = append(sp.events, events...)
		})
		s.onSync()
		return s.send(wire.Frame(wire.ClientQuery, queryBody(rejectMarker)))
	case (v.concurrent || advisory) && idle && len(ds) == 1:
		return s.runLifted(v, events, wire.Frame(wire.ClientQuery, queryBody(v.sql(sql))))
	}
	msg := body
	if v.rewritten != "" {
		msg = queryBody(v.rewritten)
	}
	warning, err := s.clampLockTimeout(ds)
	if err != nil {
		return err
	}
	if warning != nil {
		v.notices = append(v.notices, warning)
	}
	var r *retry
	if v.ddl && idle && len(ds) == 1 && ds[0].Decision.Retryable {
		r = s.retryFor(eng, wire.Frame(wire.ClientQuery, msg))
	}
	sp := s.nextSpecial()
	s.amend(sp, func(sp *syncPoint) {
		sp.notices = append(sp.notices, v.notices...)
		sp.creates = append(sp.creates, v.creates...)
		sp.notValid = append(sp.notValid, v.notValid...)
		sp.exclusive = append(sp.exclusive, v.exclusive...)
		sp.events = append(sp.events, events...)
		if r != nil {
			sp.retry, sp.done = r, make(chan struct{})
		}
	})
	s.onSync()
	if r == nil {
		return s.sendMessage(wire.ClientQuery, msg)
	}
	if err := s.send(wire.Frame(wire.ClientQuery, msg)); err != nil {
		return err
	}
	// Nothing else may reach the server until the retries are over.
	if _, clientLeft := s.awaitOutcome(sp); clientLeft {
		return errClientLeft
	}
	return nil
}

// nextSpecial returns the special sync point of the next sync message
// (Query, Sync, FunctionCall): the open extended-protocol batch's, or a new
// one. It is queued at once, so that the server-to-client loop treats every
// message of its answer, even those that come before the sync message is
// sent (after a Flush); change it only through amend.
func (s *Session) nextSpecial() *syncPoint {
	if s.batch != nil {
		return s.batch
	}
	sp := &syncPoint{seq: s.sent + 1}
	s.syncs.push(sp)
	return sp
}

// amend changes a queued sync point. The server-to-client loop may be
// reading it already; it does so holding cwMu.
func (s *Session) amend(sp *syncPoint, f func(*syncPoint)) {
	s.cwMu.Lock()
	f(sp)
	s.cwMu.Unlock()
}

func queryBody(sql string) []byte { return append([]byte(sql), 0) }

// needsCare reports whether any statement is DDL or not simply allowed.
func needsCare(ds []policy.StatementDecision) bool {
	for _, d := range ds {
		if d.Decision.DDL || d.Decision.Action != policy.Allow || len(d.Decision.Findings) > 0 {
			return true
		}
	}
	return false
}

// retryFor returns the retry state for a DDL statement in autocommit, or
// nil when retries are off.
func (s *Session) retryFor(eng *policy.Engine, msg []byte) *retry {
	r := eng.Config().LockTimeoutRetries
	if r.Attempts <= 1 { // attempts counts every try, the first included
		return nil
	}
	return &retry{
		query: msg, attempts: r.Attempts - 1,
		initial: time.Duration(r.InitialBackoff), max: time.Duration(r.MaxBackoff),
		onRetry: func(attempt int, wait time.Duration) {
			s.log.Warn("lock_timeout: retrying DDL", "retry", attempt, "tries", r.Attempts, "backoff", wait.String(),
				"user", s.state.User, "database", s.state.Database)
			s.srv.hooks().LockTimeoutRetry(s.target.Name)
		},
	}
}

// verdict is what the decisions on a Query (or a Parse) add up to.
type verdict struct {
	reject     *policy.Finding
	rejects    []policy.Finding
	rewritten  string
	concurrent bool
	ddl        bool
	notices    [][]byte
	creates    []string
	notValid   []policy.NotValidConstraint
	exclusive  []policy.Table
	decisions  []policy.StatementDecision
}

// sql returns the SQL to run for a one-statement Query.
func (v *verdict) sql(orig string) string {
	if v.rewritten != "" {
		return v.rewritten
	}
	return orig
}

func verdictOf(ds []policy.StatementDecision) *verdict {
	v := &verdict{decisions: ds}
	for _, sd := range ds {
		d := sd.Decision
		v.ddl = v.ddl || d.DDL
		v.creates = append(v.creates, d.CreatesTables...)
		v.notValid = append(v.notValid, d.AddsNotValid...)
		v.exclusive = append(v.exclusive, d.LocksExclusive...)
		for i := range d.Findings {
			f := &d.Findings[i]
			switch f.Action {
			case policy.Reject:
				if v.reject == nil {
					v.reject = f
				}
				v.rejects = append(v.rejects, *f)
			case policy.Warn:
				v.notices = append(v.notices, notice("WARNING", f, ""))
			case policy.Rewrite:
				v.notices = append(v.notices, notice("NOTICE", f, d.Rewritten))
			}
		}
		if d.Action == policy.Rewrite && len(ds) == 1 {
			v.rewritten = d.Rewritten
		}
		if d.Concurrent && len(ds) == 1 {
			v.concurrent = true
		}
	}
	return v
}

// notice encodes a NoticeResponse for a warned or rewritten statement.
func notice(severity string, f *policy.Finding, rewritten string) []byte {
	e := &wire.PGError{Severity: severity, Code: "01000", Detail: f.Detail, Hint: f.Hint}
	if rewritten != "" {
		// Done already: a recipe would read like an instruction.
		e.Message = fmt.Sprintf("pgguard: %s: rewritten to run without blocking writes: %s", f.RuleID, rewritten)
		e.Detail, e.Hint = strings.TrimSpace(f.Message+" "+f.Detail), ""
	} else {
		e.Message = "pgguard: " + f.RuleID + ": " + f.Message
	}
	return e.Encode(nil, true)
}

// refusal is the ErrorResponse a refused statement gets: SQLSTATE 42501,
// the rule, the table and the lock in the message, the recipe in the hint.
func (s *Session) refusal(v *verdict) *wire.PGError {
	f := v.reject
	msg := "pgguard: " + f.RuleID + ": " + f.Message
	if f.Lock != "" && !strings.Contains(strings.ToUpper(f.Message), strings.ToUpper(f.Lock)) {
		msg += " (takes " + f.Lock + " lock)"
	}
	detail := f.Detail
	for _, o := range v.rejects[1:] {
		detail = strings.TrimSpace(detail + " Also " + o.RuleID + ": " + o.Message)
	}
	if detail == "" {
		detail = "Refused by the pgguard policy before it reached the server; nothing ran."
	}
	if !s.state.InTransaction() && s.tool() != policy.ToolUnknown {
		if d := policy.AlreadyCommittedDetail(s.committed.get()); d != "" {
			detail += "\n" + d
		}
	}
	if f.Hint != "" {
		// Some tools print only the message and the detail (sequelize-cli
		// does), so the recipe goes in both.
		detail += "\nSafe recipe:\n" + f.Hint
	}
	return &wire.PGError{Severity: "ERROR", Code: wire.CodeInsufficientPrivilege, Message: msg, Detail: detail, Hint: f.Hint}
}
