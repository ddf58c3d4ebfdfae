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
		// Go has no table for EUC_TW, EUC_JIS_2004, JOHAB, MULE_INTERNAL:
		// placeholders, by PostgreSQL's verifiers.
		{"EUC_TW", "SELECT '\xa4\xa1'", "SELECT '\ufdda\ufde4\ufdda\ufde1'", false},
		{"EUC_TW", "SELECT '\x8e\xa2\xa4\xa1'", "SELECT '\ufdd8\ufdee\ufdda\ufde2\ufdda\ufde4\ufdda\ufde1'", false},
		{"EUC_TW", "SELECT '\x8e\xa8\xa4\xa1'", "", true}, // planes 1-7 only
		{"EUC_TW", "SELECT '\x8f\xa1\xa1'", "", true},     // SS3 is unused
		{"EUC_TW", "SELECT '\xa4\x5c'", "", true},
		{"EUC_JIS_2004", "SELECT '\x8f\xa1\xa1'", "SELECT '\ufdd8\ufdef\ufdda\ufde1\ufdda\ufde1'", false},
		{"EUC_JIS_2004", "SELECT '\xa4\x27'", "", true},
		{"JOHAB", "SELECT '\x88\xa1'", "SELECT '\ufdd8\ufde8\ufdda\ufde1'", false},
		{"JOHAB", "SELECT '\x88\x61'", "", true}, // a JOHAB trail byte PostgreSQL's verifier refuses
		{"MULE_INTERNAL", "SELECT '\x81\xe9'", "SELECT '\ufdd8\ufde1\ufdde\ufde9'", false},
		{"MULE_INTERNAL", "SELECT '\x81\x27'", "", true},
		{"MULE_INTERNAL", "SELECT '\xe9'", "SELECT '\ufdde\ufde9'", false}, // no leading byte: one byte
		{"SJIS", "SELECT E'\x95", "", true},                                // cut short: the server refuses it
		// PostgreSQL's GBK verifier takes any byte above 0x7f and the next
		// non-NUL byte as one character; Go's table has none for 0x80 0x27
		// (nor has the server's: it refuses it when it converts, 22P05).
		{"GBK", "SELECT E'\x80\x27'", "SELECT E'\ufdd8\ufde0\ufdd2\ufde7'", false},
		{"GB18030", "SELECT E'\x81\x30'", "", true}, // cut short: four bytes begin so
		{"GB18030", "SELECT '\x81\x30\x81'", "", true},
		// GB18030's user-defined area and UHC's, JIS X 0213 in
		// SHIFT_JIS_2004: PostgreSQL's maps know them, Go's do not.
		{"GB18030", "SELECT '\xaa\xa1'", "SELECT '\ufdda\ufdea\ufdda\ufde1'", false},
		{"EUC_KR", "SELECT '\xa1'", "", true},
		{"EUC_JP", "SELECT '\x8e\xe0'", "", true},
		{"SJIS", "SELECT E'\x80\x5c'", "", true}, // not a lead byte
	} {
		got, err := ClientText(tc.enc, tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ClientText(%s, %q) = %q, %v", tc.enc, tc.in, got, err)
		}
	}
	if s, err := ServerText("SJIS", "CREATE INDEX CONCURRENTLY \"表\" ON t (c)"); err != nil || s != "CREATE INDEX CONCURRENTLY \"\x95\x5c\" ON t (c)" {
		t.Errorf("ServerText = %q, %v", s, err)
	}
	// A placeholder is written back as the bytes it stands for.
	for _, tc := range []struct{ enc, in string }{
		{"GB18030", "CREATE INDEX CONCURRENTLY \"\xaa\xa1\x81\x5c\" ON t (c)"},
		{"UHC", "CREATE INDEX CONCURRENTLY \"\xc9\xa1\" ON t (c)"},
		{"LATIN3", "CREATE INDEX CONCURRENTLY \"\xa5\xe9\" ON t (c)"},
		{"EUC_TW", "CREATE INDEX CONCURRENTLY \"\xa4\xa1\x8e\xa2\xa4\xa1\" ON t (c)"},
		{"EUC_JIS_2004", "CREATE INDEX CONCURRENTLY \"\xa4\xa2\x8f\xa1\xa1\" ON t (c)"},
		{"JOHAB", "CREATE INDEX CONCURRENTLY \"\x88\xa1\" ON t (c)"},
		{"MULE_INTERNAL", "CREATE INDEX CONCURRENTLY \"\x81\xe9\" ON t (c)"},
	} {
		read, err := ClientText(tc.enc, tc.in)
		if err != nil || !HasPlaceholder(read) {
			t.Errorf("ClientText(%s, %q) = %q, %v: want a placeholder", tc.enc, tc.in, read, err)
			continue
		}
		if back, err := ServerText(tc.enc, read); err != nil || back != tc.in {
			t.Errorf("ServerText(%s, %q) = %q, %v, want %q", tc.enc, read, back, err, tc.in)
		}
	}
	// Distinct characters, distinct placeholders.
	a, _ := ClientText("GB18030", "\xaa\xa1")
	b, _ := ClientText("GB18030", "\xaa\xa2")
	if a == b {
		t.Errorf("two user-defined characters read alike: %q", a)
	}
	if s, err := ServerText("LATIN1", "CREATE INDEX CONCURRENTLY \"é\" ON t (c)"); err != nil || s != "CREATE INDEX CONCURRENTLY \"\xe9\" ON t (c)" {
		t.Errorf("ServerText = %q, %v", s, err)
	}
}

func TestMessageText(t *testing.T) {
	for _, tc := range []struct{ enc, in, want string }{
		{"UTF8", "on \"表\" → x", "on \"表\" → x"},
		{"SJIS", "on \"表\".a", "on \"\x95\x5c\".a"},
		{"SJIS", "on \"表\" → x", "on \"\x95\x5c\" \x81\xa8 x"},
		{"LATIN1", "on \"é\" → x", "on \"\xe9\" ? x"},
		{"EUC_TW", "on \"\ufdda\ufde4\ufdda\ufde1\" → x", "on \"\xa4\xa1\" ? x"},
		{"EUC_TW", "on \"\ufdda\ufde4\" → x", "on \"??\" ? x"}, // half a character: not written
	} {
		if got := MessageText(tc.enc, tc.in); got != tc.want {
			t.Errorf("MessageText(%s, %q) = %q, want %q", tc.enc, tc.in, got, tc.want)
		}
	}
}

func TestUnicodeEscaped(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT 1 FROM t WHERE c.relname = 'rt_表' AND x = 'a\b''c'`: `SELECT 1 FROM t WHERE c.relname = U&'rt_\8868' AND x = 'a\b''c'`,
		`SELECT to_regclass('"rt_表""😀"')`:                           `SELECT to_regclass(U&'"rt_\8868""\+01F600"')`,
		`SELECT 1 FROM "é\x"`:                                       `SELECT 1 FROM U&"\00E9\\x"`,
		`SELECT 'plain'`:                                            `SELECT 'plain'`,
	} {
		if got, ok := UnicodeEscaped(in); !ok || got != want {
			t.Errorf("UnicodeEscaped(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{`SELECT E'é'`, `SELECT $$é$$`, `SELECT 1 -- é`, `SELECT é`} {
		if got, ok := UnicodeEscaped(in); ok {
			t.Errorf("UnicodeEscaped(%q) = %q; want not ok", in, got)
		}
	}
}
