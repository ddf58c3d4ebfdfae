package wiretest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// norm is a server message after normalisation, printable and comparable.
type norm struct {
	typ  byte
	text string
}

func (n norm) String() string { return fmt.Sprintf("%c %s", n.typ, n.text) }

// firstUserOID: OIDs below it are PostgreSQL's own and the same in every
// database; objects a session creates get different OIDs on each side.
const firstUserOID = 16384

// normalize turns one side's messages into comparable form. Only what the
// design documents as differing is changed:
//   - BackendKeyData (pid and secret differ per connection);
//   - pgguard's own NoticeResponses (a warning or rewrite adds one);
//   - the refusal: pgguard's ErrorResponse (42501, "pgguard: ...") on the
//     proxied side, and PostgreSQL's error for directSubstitute on the
//     direct side, both become "REFUSED";
//   - OIDs of objects created in the session (RowDescription), renamed in
//     order of appearance.
//
// Anything else is kept whole, so that it must match byte for byte.
func normalize(msgs []backendMsg, proxied bool) ([]norm, []string) {
	var out []norm
	var bad []string // refusals that do not look like one
	oids := map[uint32]int{}
	for _, m := range msgs {
		switch m.typ {
		case 'K':
			out = append(out, norm{m.typ, "(backend key)"})
			continue
		case 'A':
			// NotificationResponse: the sender's pid differs by side.
			if len(m.body) > 4 {
				out = append(out, norm{m.typ, "notification " + strings.ReplaceAll(string(m.body[4:]), "\x00", " ")})
				continue
			}
		case 'N':
			if proxied && strings.HasPrefix(field(m.body, 'M'), "pgguard:") {
				continue
			}
		case 'E':
			code, text := field(m.body, 'C'), field(m.body, 'M')
			if proxied && strings.HasPrefix(text, "pgguard:") {
				if code != "42501" {
					bad = append(bad, fmt.Sprintf("pgguard refusal with SQLSTATE %s, want 42501: %s", code, text))
				}
				out = append(out, norm{m.typ, "REFUSED"})
				continue
			}
			if !proxied && strings.Contains(text, directSubstitute) {
				out = append(out, norm{m.typ, "REFUSED"})
				continue
			}
		case 'T':
			out = append(out, norm{m.typ, rowDescription(m.body, oids)})
			continue
		}
		out = append(out, norm{m.typ, describe(m)})
	}
	return out, bad
}

// field returns an ErrorResponse or NoticeResponse field.
func field(body []byte, code byte) string {
	for len(body) > 1 && body[0] != 0 {
		f := body[0]
		end := bytes.IndexByte(body[1:], 0)
		if end < 0 {
			return ""
		}
		if f == code {
			return string(body[1 : 1+end])
		}
		body = body[2+end:]
	}
	return ""
}

// rowDescription prints a RowDescription with user OIDs renamed.
func rowDescription(body []byte, oids map[uint32]int) string {
	rename := func(oid uint32) string {
		if oid < firstUserOID {
			return fmt.Sprint(oid)
		}
		if _, ok := oids[oid]; !ok {
			oids[oid] = len(oids) + 1
		}
		return fmt.Sprintf("user-oid-%d", oids[oid])
	}
	if len(body) < 2 {
		return fmt.Sprintf("malformed %q", body)
	}
	n := int(binary.BigEndian.Uint16(body))
	rest := body[2:]
	var b strings.Builder
	fmt.Fprintf(&b, "%d fields:", n)
	for range n {
		end := bytes.IndexByte(rest, 0)
		if end < 0 || len(rest) < end+19 {
			return fmt.Sprintf("malformed %q", body)
		}
		name := string(rest[:end])
		f := rest[end+1:]
		table := binary.BigEndian.Uint32(f[0:])
		attnum := binary.BigEndian.Uint16(f[4:])
		typ := binary.BigEndian.Uint32(f[6:])
		size := int16(binary.BigEndian.Uint16(f[10:]))
		mod := int32(binary.BigEndian.Uint32(f[12:]))
		format := binary.BigEndian.Uint16(f[16:])
		fmt.Fprintf(&b, " %q(table=%s,col=%d,type=%s,size=%d,mod=%d,fmt=%d)", name, rename(table), attnum, rename(typ), size, mod, format)
		rest = f[18:]
	}
	if len(rest) != 0 {
		return fmt.Sprintf("malformed %q", body)
	}
	return b.String()
}

// describe prints a message for humans, whole: the comparison uses it.
func describe(m backendMsg) string {
	switch m.typ {
	case 'E', 'N':
		var parts []string
		body := m.body
		for len(body) > 1 && body[0] != 0 {
			end := bytes.IndexByte(body[1:], 0)
			if end < 0 {
				break
			}
			parts = append(parts, fmt.Sprintf("%c=%q", body[0], body[1:1+end]))
			body = body[2+end:]
		}
		return strings.Join(parts, " ")
	case 'Z':
		return fmt.Sprintf("ReadyForQuery %q", m.body)
	case 'D':
		if len(m.body) <= 2000 {
			if t, ok := dataRow(m.body); ok {
				return t
			}
		}
		fallthrough
	case 'd':
		if len(m.body) > 200 {
			return fmt.Sprintf("%q...(%d bytes, %x)", m.body[:80], len(m.body), hash(m.body))
		}
	}
	return fmt.Sprintf("%q", m.body)
}

// hash fingerprints a long body, so that differing bodies print
// differently while staying short.
func hash(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}

// diff compares the two normalised streams and describes the first
// difference with some context, or returns "".
func diff(direct, proxied []norm) string {
	i := 0
	for i < len(direct) && i < len(proxied) && direct[i] == proxied[i] {
		i++
	}
	if i == len(direct) && i == len(proxied) {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "first difference at message %d (direct has %d, proxied has %d):\n", i, len(direct), len(proxied))
	from := max(0, i-3)
	show := func(label string, ms []norm) {
		fmt.Fprintf(&b, "  %s:\n", label)
		for j := from; j < len(ms) && j < i+4; j++ {
			mark := "   "
			if j == i {
				mark = ">> "
			}
			text := ms[j].String()
			if len(text) > 700 {
				text = text[:680] + fmt.Sprintf("...(%d bytes)", len(text))
			}
			fmt.Fprintf(&b, "    %s%d %s\n", mark, j, text)
		}
		if i >= len(ms) {
			fmt.Fprintf(&b, "    >> %d (nothing)\n", i)
		}
	}
	show("direct", direct)
	show("through pgguard", proxied)
	return b.String()
}

// peerNotifications takes the second session's NOTIFYs out of a
// normalised transcript: their payloads in order, and where one came
// where PostgreSQL never sends one. PostgreSQL delivers another session's
// notification only while the session is outside a transaction and waits
// for input: idle, right before a ReadyForQuery 'I', but also inside an
// extended batch after a COMMIT, a ROLLBACK or an error ended its
// transaction. The place depends on timing; the order does not. What is
// checked is that none lands inside a transaction block: between two
// ReadyForQuery messages that both say 'T' or 'E'.
func peerNotifications(ns []norm) (rest []norm, payloads, illegal []string) {
	prefix := "notification " + peerChannel + " " + peerPayload
	isPeer := func(n norm) bool { return n.typ == 'A' && strings.HasPrefix(n.text, prefix) }
	inBlock := func(j, step int) bool {
		for ; j >= 0 && j < len(ns); j += step {
			if ns[j].typ == 'Z' {
				return ns[j].text == `ReadyForQuery "T"` || ns[j].text == `ReadyForQuery "E"`
			}
		}
		return false // the start of the session, or the end of what came
	}
	for i, n := range ns {
		if !isPeer(n) {
			rest = append(rest, n)
			continue
		}
		p := strings.TrimSpace(strings.TrimPrefix(n.text, "notification "+peerChannel+" "))
		payloads = append(payloads, p)
		if inBlock(i-1, -1) && inBlock(i+1, 1) {
			illegal = append(illegal, fmt.Sprintf("NOTIFY %q at message %d, inside a transaction block", p, i))
		}
	}
	return rest, payloads, illegal
}

// dataRow prints a DataRow's fields, NULL as NULL.
func dataRow(body []byte) (string, bool) {
	if len(body) < 2 {
		return "", false
	}
	n := int(binary.BigEndian.Uint16(body))
	rest := body[2:]
	parts := make([]string, 0, n)
	for range n {
		if len(rest) < 4 {
			return "", false
		}
		l := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if l < 0 {
			parts = append(parts, "NULL")
			continue
		}
		if int(l) > len(rest) {
			return "", false
		}
		parts = append(parts, fmt.Sprintf("%q", rest[:l]))
		rest = rest[l:]
	}
	if len(rest) != 0 {
		return "", false
	}
	return "row " + strings.Join(parts, " | "), true
}
