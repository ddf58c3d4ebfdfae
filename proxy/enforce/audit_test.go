package enforce

import (
	"encoding/binary"
	"testing"
)

// bindBody encodes a Bind body for unnamed portal and statement s, with
// the given parameter format codes and values (nil for NULL).
func bindBody(s string, formats []uint16, values ...[]byte) []byte {
	b := append([]byte{0}, s...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(formats)))
	for _, f := range formats {
		b = binary.BigEndian.AppendUint16(b, f)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(values)))
	for _, v := range values {
		if v == nil {
			b = binary.BigEndian.AppendUint32(b, 0xffffffff)
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	return binary.BigEndian.AppendUint16(b, 0) // result formats
}

// The migration name of a ledger INSERT from its Bind, as the drivers send
// it: text (node-postgres, lib/pq, ruby-pg, pgjdbc's strings), binary
// (pgx sends an int8 version in binary).
func TestBindParam(t *testing.T) {
	t.Parallel()
	int8 := binary.BigEndian.AppendUint64(nil, 20260101000001)
	int4 := binary.BigEndian.AppendUint32(nil, 3)
	for _, c := range []struct {
		body []byte
		n    int
		want string
	}{
		{bindBody("", nil, []byte("1"), []byte("2026"), []byte("20260101000001_create_payees.js")), 3, "20260101000001_create_payees.js"},
		{bindBody("a1", []uint16{0}, []byte("20260101000002")), 1, "20260101000002"},
		{bindBody("", []uint16{1, 1}, int8, []byte{1}), 1, "20260101000001"},
		{bindBody("", []uint16{1}, int4), 1, "3"},
		{bindBody("", []uint16{0, 1, 0}, int4, []byte("V2__add_nickname.sql"), nil), 2, "V2__add_nickname.sql"},
		{bindBody("", nil, nil, []byte("x")), 1, ""},
		{bindBody("", nil, []byte("x")), 2, ""},
		{bindBody("", nil, []byte("x"))[:6], 1, ""},
	} {
		if got := bindParam(c.body, c.n); got != c.want {
			t.Errorf("%q $%d: %q, want %q", c.body, c.n, got, c.want)
		}
	}
}
