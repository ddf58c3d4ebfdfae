package enforce

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"github.com/pgguard/pgguard/policy/sqltext"
	"math"
	"strconv"
	"strings"

	"github.com/pgguard/pgguard/internal/observe"
	"github.com/pgguard/pgguard/internal/pgcatalog"
	"github.com/pgguard/pgguard/internal/wire"
	"github.com/pgguard/pgguard/policy"
)

// A migration's session (the tool's ledger, application_name, DDL run in
// the session, a profile with migration: true) gets its UPDATEs and
// DELETEs estimated even when they pick rows by equality (rule large-dml
// checks the equality against the unique indexes), and its statements with
// bound parameters estimated with the values they are bound to: before
// PostgreSQL 16 the planner cannot estimate "$1" without a value (no
// EXPLAIN GENERIC_PLAN). An application's session keeps the fast path: no
// parse, no round trip, for a statement by key.

// migration reports whether the session is a migration's.
func (m *Machine) migration(eng *policy.Engine) bool {
	if m.sawDDL || m.tool() != policy.ToolUnknown {
		return true
	}
	name := m.state.CurrentApplicationName()
	if m.migProfile.eng != eng || m.migProfile.name != name {
		sc := policy.Context{User: m.state.User, Database: m.state.Database, ApplicationName: name, Profile: m.cfg.Profile}
		m.migProfile.eng, m.migProfile.name, m.migProfile.is = eng, name, eng.MigrationProfile(&sc)
	}
	return m.migProfile.is
}

// noteDDL records that the session ran DDL: it is a migration's from then on.
func (m *Machine) noteDDL(ds []policy.StatementDecision) {
	for i := range ds {
		// DDL in a function an application calls does not make its
		// session a migration's.
		if ds[i].Decision.DDL && sqltext.Classify(ds[i].Statement.Text) == sqltext.ClassDDL {
			m.sawDDL = true
		}
	}
	m.forgetMemo(ds)
}

// plainText is the engine's fast-path check for one reading of a text; a
// DML statement that only an application's session may skip is not plain
// in a migration's session.
func (m *Machine) plainText(eng *policy.Engine, text string, backslash bool) (int, bool) {
	if m.catalog.Memo.Kept() && changesLookup(text) {
		m.catalog.Memo.Forget()
	}
	n, plain, dml := eng.PlainDML(text, backslash)
	if plain && dml && m.migration(eng) {
		return n, false
	}
	return n, plain
}

// boundStmt is a prepared UPDATE or DELETE of a migration's session that
// takes parameters, prepared without its Bind (Parse, Describe, Sync): its
// Bind is judged with the values it binds (OnBind).
type boundStmt struct {
	query  string
	params []byte // the Parse's parameter types (count and OIDs)
}

// needsValues reports whether a statement is judged with its bound values:
// a migration's session, a server that cannot estimate it without them,
// and a statement that may change rows and names a parameter.
func (m *Machine) needsValues(eng *policy.Engine, query string) bool {
	v := m.state.ServerVersion()
	return (v == 0 || v < 160000) && sqltext.ChangesRows(query) && pgcatalog.HasParameters(query) && m.migration(eng)
}

// batchBind returns the body of the first Bind of statement name among
// the messages that follow the Parse just read, up to the batch's Sync.
// Like aloneInBatch it waits for the client's next bytes: a client sends
// Flush or Sync (or a Query) before it waits for answers. found is false
// when the batch ends, or a Flush, a Query or another Parse comes, before
// such a Bind, or when the batch is longer than the read buffer.
func (m *Machine) batchBind(name string) (body []byte, found bool) {
	return m.bindFrom(0, name, true)
}

// bindFrom is batchBind from offset start of the read buffer; without
// wait it looks only at what has arrived.
func (m *Machine) bindFrom(start int, name string, wait bool) (body []byte, found bool) {
	size := m.conns.FromClient.Size()
	if !wait {
		size = m.conns.FromClient.Buffered()
	}
	for off := start; off+5 <= size; {
		b, err := m.conns.FromClient.Peek(off + 5)
		if err != nil {
			return nil, false
		}
		typ, l := wire.ClientMsg(b[off]), int(binary.BigEndian.Uint32(b[off+1:off+5]))
		if l < 4 || off+1+l > size {
			return nil, false
		}
		switch typ {
		case wire.ClientDescribe, wire.ClientExecute, wire.ClientClose:
		default:
			// Sync, Flush, another Parse, and what ends the batch for
			// the client: a Query or FunctionCall, whose answer it may
			// wait for before it sends anything more. Waiting past one
			// for a Bind hung the session.
			return nil, false
		case wire.ClientBind:
			b, err := m.conns.FromClient.Peek(off + 1 + l)
			if err != nil {
				return nil, false
			}
			body := b[off+5 : off+1+l]
			_, rest, ok := wire.CStringBytes(body)
			stmt, _, ok2 := wire.CStringBytes(rest)
			if ok && ok2 && string(stmt) == name {
				return append([]byte(nil), body...), true
			}
		}
		off += 1 + l
	}
	return nil, false
}

// boundText substitutes the values a Bind binds for the parameters of
// query, as literals typed like the Parse declared them (untyped, like the
// parameter, when it did not). why says what could not be read: a binary
// value of a type pgguard does not decode.
func boundText(query string, params, bind []byte) (text, why string) {
	oids := paramOIDs(params)
	vals, formats, ok := bindValues(bind)
	if !ok {
		return "", "its Bind message could not be read"
	}
	lits := make([]string, len(vals))
	for i, v := range vals {
		var oid uint32
		if i < len(oids) {
			oid = oids[i]
		}
		lit, ok := literal(oid, formats[i], v)
		if !ok {
			return "", "a parameter is bound in binary form, of a type pgguard does not read"
		}
		lits[i] = lit
	}
	text, ok = sqltext.ReplaceParams(query, func(n int) (string, bool) {
		if n > len(lits) {
			return "", false
		}
		return "(" + lits[n-1] + ")", true
	})
	if !ok {
		return "", "its text could not be scanned, or it names a parameter its Bind does not bind"
	}
	return text, ""
}

// paramOIDs reads the parameter types of a Parse (after its query).
func paramOIDs(params []byte) []uint32 {
	if len(params) < 2 {
		return nil
	}
	n := int(binary.BigEndian.Uint16(params))
	out := make([]uint32, 0, n)
	for i := 0; i < n && 2+4*i+4 <= len(params); i++ {
		out = append(out, binary.BigEndian.Uint32(params[2+4*i:]))
	}
	return out
}

// bindValues reads a Bind's parameter values (nil for NULL) and formats.
func bindValues(body []byte) (vals [][]byte, formats []int16, ok bool) {
	_, rest, ok := wire.CStringBytes(body)
	if !ok {
		return nil, nil, false
	}
	if _, rest, ok = wire.CStringBytes(rest); !ok || len(rest) < 2 {
		return nil, nil, false
	}
	nf := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < 2*nf+2 {
		return nil, nil, false
	}
	fmts := make([]int16, nf)
	for i := range fmts {
		fmts[i] = int16(binary.BigEndian.Uint16(rest[2*i:]))
	}
	rest = rest[2*nf:]
	np := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if nf > 1 && nf != np {
		return nil, nil, false
	}
	for i := 0; i < np; i++ {
		if len(rest) < 4 {
			return nil, nil, false
		}
		l := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		var f int16
		switch nf {
		case 0:
		case 1:
			f = fmts[0]
		default:
			f = fmts[i]
		}
		formats = append(formats, f)
		if l < 0 {
			vals = append(vals, nil)
			continue
		}
		if int(l) > len(rest) {
			return nil, nil, false
		}
		vals = append(vals, rest[:l])
		rest = rest[l:]
	}
	return vals, formats, true
}

// typeNames are the types a literal is cast to, by OID.
var typeNames = map[uint32]string{
	16: "bool", 20: "int8", 21: "int2", 23: "int4", 25: "text", 700: "float4", 701: "float8",
	1043: "varchar", 1042: "bpchar", 1700: "numeric", 1082: "date", 1114: "timestamp",
	1184: "timestamptz", 2950: "uuid", 114: "json", 3802: "jsonb",
}

// literal writes a bound value as SQL: NULL, or a quoted literal cast to
// its declared type. A binary value is decoded for the common types.
func literal(oid uint32, format int16, v []byte) (string, bool) {
	if v == nil {
		return "NULL", true
	}
	cast := ""
	if name, ok := typeNames[oid]; ok {
		cast = "::pg_catalog." + name
	}
	if format == 0 {
		return pgcatalog.QuoteLiteral(string(v)) + cast, true
	}
	var s string
	switch {
	case oid == 21 && len(v) == 2:
		s = strconv.FormatInt(int64(int16(binary.BigEndian.Uint16(v))), 10)
	case oid == 23 && len(v) == 4:
		s = strconv.FormatInt(int64(int32(binary.BigEndian.Uint32(v))), 10)
	case oid == 20 && len(v) == 8:
		s = strconv.FormatInt(int64(binary.BigEndian.Uint64(v)), 10)
	case oid == 16 && len(v) == 1:
		s = strconv.FormatBool(v[0] != 0)
	case oid == 701 && len(v) == 8:
		s = strconv.FormatFloat(math.Float64frombits(binary.BigEndian.Uint64(v)), 'g', -1, 64)
	case oid == 700 && len(v) == 4:
		s = strconv.FormatFloat(float64(math.Float32frombits(binary.BigEndian.Uint32(v))), 'g', -1, 32)
	case oid == 2950 && len(v) == 16:
		h := hex.EncodeToString(v)
		s = h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	case oid == 25 || oid == 1043 || oid == 1042 || oid == 19:
		s = string(v)
	default:
		return "", false
	}
	return pgcatalog.QuoteLiteral(s) + cast, true
}

// bindWithValues judges the Bind of a boundStmt with the values it binds
// and sends it, or, refused, a Bind the server fails in its place. At the
// start of a batch the catalog is asked (after earlier sync points are
// answered); behind other messages of its batch it cannot be, and the
// statement is judged as one pgguard cannot estimate there.
func (m *Machine) bindWithValues(bs boundStmt, body []byte) error {
	eng := m.cfg.Policy.Engine()
	if !m.unsynced && m.pending.Load() > 0 && !m.waitIdle() {
		return nil
	}
	text, why := boundText(bs.query, bs.params, body)
	if why != "" && !m.unsynced && m.state.TxStatus() != 'E' {
		// Binary values of parameters the Parse left untyped (pgx): the
		// server knows the types it inferred.
		if params, ok := m.preparedTypes(stmtName(body)); ok {
			text, why = boundText(bs.query, params, body)
		}
	}
	portal, _, _ := wire.CStringBytes(body)
	return m.judgeBind(eng, bs, text, why, portal,
		func() error { return m.conns.sendMessage(wire.ClientBind, body) }, func() error { return nil })
}

// bindTooLong judges the Bind of a boundStmt whose n body bytes are more
// than pgguard reads (OnBind): with its text alone, as one whose values
// pgguard cannot know, so that a migration's statement on a big table
// gets the refusal with the batching recipe. The body is forwarded as it
// arrives, or, refused, skipped.
func (m *Machine) bindTooLong(bs boundStmt, portal string, n int) error {
	eng := m.cfg.Policy.Engine()
	if !m.unsynced && m.pending.Load() > 0 && !m.waitIdle() {
		return nil
	}
	return m.judgeBind(eng, bs, bs.query, fmt.Sprintf("its Bind of %d bytes is longer than pgguard reads", n), []byte(portal),
		func() error { return m.conns.Forward(wire.ClientBind, n) },
		func() error { _, err := m.conns.FromClient.Discard(n); return err })
}

// peekBindNames reads the portal and statement names at the start of a
// Bind body of n bytes without consuming it; ok is false when they do not
// end within the read buffer.
func (m *Machine) peekBindNames(n int) (portal, stmt string, ok bool) {
	b, err := m.conns.FromClient.Peek(min(n, m.conns.FromClient.Size()))
	if err != nil {
		return "", "", false
	}
	p, rest, ok1 := wire.CStringBytes(b)
	st, _, ok2 := wire.CStringBytes(rest)
	return string(p), string(st), ok1 && ok2
}

// judgeBind decides a boundStmt's Bind as text (why: what of its values
// could not be read, "" when text holds them) and then passes it (pass),
// or, refused, drops it (drop) and sends a Bind the server fails in its
// place, naming portal.
func (m *Machine) judgeBind(eng *policy.Engine, bs boundStmt, text, why string, portal []byte, pass, drop func() error) error {
	sc := m.policyContext(false)
	sc.InTransaction = sc.InTransaction || m.unsynced
	if why != "" {
		// Judged as it is, with the catalog: a small table stays exempt.
		text = bs.query
		sc.Unestimable = "its Bind cannot be read: " + why
	}
	stmt := sqltext.Statement{Text: text, End: len(text), Line: 1}
	ds := []policy.StatementDecision{{Statement: stmt, Decision: eng.Decide(context.Background(), stmt, sc)}}
	if err := m.imposeAhead(); err != nil { // batchlt.go
		return err
	}
	m.unsynced = true
	if !needsCare(ds) {
		return pass()
	}
	v := m.verdictOf(ds)
	events := []*observe.StatementEvent{m.event(v, bs.query)}
	if v.reject == nil {
		m.amend(m.batchPoint(), func(b *syncPoint) {
			b.notices = append(b.notices, v.notices...)
			b.events = append(b.events, events...)
		})
		return pass()
	}
	m.amend(m.batchPoint(), func(b *syncPoint) {
		if b.swap == nil {
			b.swap, b.marker = m.refusal(v), rejectMarker
		}
		b.events = append(b.events, events...)
	})
	if err := drop(); err != nil {
		return err
	}
	// A Bind of a statement that does not exist fails with the name in
	// the server's message: the marker.
	refused := append(append(append([]byte(nil), portal...), 0), rejectMarker...)
	return m.conns.sendMessage(wire.ClientBind, append(refused, 0, 0, 0, 0, 0, 0, 0))
}

// stmtName is the statement a Bind binds.
func stmtName(bind []byte) string {
	_, rest, _ := wire.CStringBytes(bind)
	name, _, _ := wire.CStringBytes(rest)
	return string(name)
}

// preparedTypes asks the server for the parameter types of a named
// prepared statement (pg_prepared_statements lists the protocol's too),
// encoded as a Parse's parameter types. It reads only a view of the
// session's memory: it takes no lock and cannot fail.
func (m *Machine) preparedTypes(name string) ([]byte, bool) {
	if name == "" {
		return nil, false // the unnamed statement is not listed
	}
	rows, ok := sessionQuerier{m}.Query("SELECT array_to_string(parameter_types::pg_catalog.oid[], ',') FROM pg_catalog.pg_prepared_statements WHERE name = " + pgcatalog.QuoteLiteral(name))
	if !ok || len(rows) != 1 || len(rows[0]) != 1 || rows[0][0] == nil {
		return nil, false
	}
	var oids []uint32
	if *rows[0][0] != "" {
		for _, f := range strings.Split(*rows[0][0], ",") {
			n, err := strconv.ParseUint(f, 10, 32)
			if err != nil {
				return nil, false
			}
			oids = append(oids, uint32(n))
		}
	}
	out := binary.BigEndian.AppendUint16(nil, uint16(len(oids)))
	for _, o := range oids {
		out = binary.BigEndian.AppendUint32(out, o)
	}
	return out, true
}
