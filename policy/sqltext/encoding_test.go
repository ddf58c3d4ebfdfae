package sqltext

import "testing"

func TestClientText(t *testing.T) {
	for _, tc := range []struct {
		enc, in, want string
		err           bool
	}{
		{"SJIS", "SELECT E'\x95\x5c'; DROP TABLE t; --'", "SELECT E'表'; DROP TABLE t; --'", false},
		{"sjis", "SELECT 'x'", "SELECT 'x'", false},
		{"GBK", "SELECT E'\x81\x5c'", "SELECT E'乗'", false},
		{"BIG5", "SELECT E'\xa5\x5c'", "SELECT E'功'", false},
		{"UTF8", "SELECT E'\x95\x5c'", "SELECT E'\x95\x5c'", false},
		// ASCII-safe, but converted for pg_query, which parses only UTF-8.
		{"LATIN1", "SELECT E'\xe9\x5c'", "SELECT E'é\x5c'", false},
		{"EUC_JP", "SELECT '\xa4\xa2'", "SELECT 'あ'", false},
		{"EUC_TW", "SELECT '\xa4\xa1'", "SELECT '\xa4\xa1'", false}, // Go cannot read it: as it is
		{"SJIS", "SELECT E'\x95", "", true},                         // cut short: the server refuses it
		{"GBK", "SELECT E'\x80\x27'", "", true},                     // would read as a quote
		{"SJIS", "SELECT E'\x80\x5c'", "", true},                    // not a lead byte
	} {
		got, err := ClientText(tc.enc, tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ClientText(%s, %q) = %q, %v", tc.enc, tc.in, got, err)
		}
	}
	if s, err := ServerText("SJIS", "CREATE INDEX CONCURRENTLY \"表\" ON t (c)"); err != nil || s != "CREATE INDEX CONCURRENTLY \"\x95\x5c\" ON t (c)" {
		t.Errorf("ServerText = %q, %v", s, err)
	}
	if s, err := ServerText("LATIN1", "CREATE INDEX CONCURRENTLY \"é\" ON t (c)"); err != nil || s != "CREATE INDEX CONCURRENTLY \"\xe9\" ON t (c)" {
		t.Errorf("ServerText = %q, %v", s, err)
	}
}
