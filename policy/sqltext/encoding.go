package sqltext

import (
	"errors"
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
)

// The server converts a statement from client_encoding to its own
// encoding before it lexes it. Every server encoding, and every client
// encoding but PostgreSQL's client-only ones, is ASCII-safe: a byte below
// 0x80 is always that ASCII character, so the lexer reads the client's bytes
// as the server reads the converted text. In SJIS, SHIFT_JIS_2004, BIG5,
// GBK, UHC and GB18030 a byte of a multibyte character can be an ASCII
// byte (0x95 0x5c is one character in SJIS, not a backslash), so their
// text is converted to UTF-8 before it is split or judged (ClientText). JOHAB is client-only
// too, but PostgreSQL accepts only bytes 0xa1-0xfe after a JOHAB lead byte
// (pg_johab_verifychar), so it needs no conversion.
//
// Where a character ends is taken from PostgreSQL's own rules (pg_*_mblen
// in wchar.c), never from the Go decoder, and each character is decoded on
// its own: the Go tables (golang.org/x/text, the WHATWG mappings) may name
// a few characters differently from PostgreSQL's maps, which changes names
// but never where a string, comment or statement ends. A character the Go
// tables cannot read, or that would read as ASCII, is an error: the server
// rejects most of them (22021, 22P05), and for the rest pgguard cannot tell
// what the statement says, so the caller refuses it.

// ErrEncoding is returned by ClientText for text that pgguard cannot read
// with certainty in the session's client_encoding.
var ErrEncoding = errors.New("text pgguard cannot read with certainty in the session's client_encoding")

// clientOnly maps PostgreSQL's names of the client-only encodings that can
// hide ASCII bytes to their Go decoders and PostgreSQL's character length.
var clientOnly = map[string]conv{
	"SJIS": {japanese.ShiftJIS, sjisLen, false},
	// SHIFT_JIS_2004 shares SJIS's bytes (pg_sjis_mblen); its characters
	// outside Shift JIS are read as ErrEncoding.
	"SHIFT_JIS_2004": {japanese.ShiftJIS, sjisLen, false},
	"BIG5":           {traditionalchinese.Big5, func(string, int) int { return 2 }, false},
	"GBK":            {simplifiedchinese.GBK, func(string, int) int { return 2 }, false},
	"UHC":            {korean.EUCKR, func(string, int) int { return 2 }, false}, // x/text's EUC-KR is windows-949, a superset
	"GB18030":        {simplifiedchinese.GB18030, gb18030Len, false},
}

// conv is how one client encoding is converted: Go's decoder, and
// PostgreSQL's length of the character a byte starts.
type conv struct {
	enc   encoding.Encoding
	mblen func(s string, i int) int
	// c1: PostgreSQL reads the bytes 0x80-0x9f as U+0080-U+009F, which
	// Go's ISO 8859 tables leave undefined.
	c1 bool
}

// asciiSafe maps PostgreSQL's names of the ASCII-safe client encodings
// that Go can read to their decoders and character lengths. The lexer
// reads their bytes as the server does, but pg_query's parser takes only
// UTF-8 (any other byte above 0x7f fails its parse), so their text is
// converted too. EUC_TW, EUC_JIS_2004 and JOHAB, which Go cannot read,
// are not: the split and the fast path read them right, and a statement
// of theirs that must be parsed and holds a character above 0x7f is a
// parse error (on_parse_error for DDL, SELECT ... INTO and a migration's
// UPDATE or DELETE).
var asciiSafe = map[string]conv{
	"LATIN1": {charmap.ISO8859_1, oneByte, true}, "LATIN2": {charmap.ISO8859_2, oneByte, true},
	"LATIN3": {charmap.ISO8859_3, oneByte, true}, "LATIN4": {charmap.ISO8859_4, oneByte, true},
	"LATIN5": {charmap.ISO8859_9, oneByte, true}, "LATIN6": {charmap.ISO8859_10, oneByte, true},
	"LATIN7": {charmap.ISO8859_13, oneByte, true}, "LATIN8": {charmap.ISO8859_14, oneByte, true},
	"LATIN9": {charmap.ISO8859_15, oneByte, true}, "LATIN10": {charmap.ISO8859_16, oneByte, true},
	"ISO_8859_5": {charmap.ISO8859_5, oneByte, true}, "ISO_8859_6": {charmap.ISO8859_6, oneByte, true},
	"ISO_8859_7": {charmap.ISO8859_7, oneByte, true}, "ISO_8859_8": {charmap.ISO8859_8, oneByte, true},
	"WIN1250": {charmap.Windows1250, oneByte, false}, "WIN1251": {charmap.Windows1251, oneByte, false},
	"WIN1252": {charmap.Windows1252, oneByte, false}, "WIN1253": {charmap.Windows1253, oneByte, false},
	"WIN1254": {charmap.Windows1254, oneByte, false}, "WIN1255": {charmap.Windows1255, oneByte, false},
	"WIN1256": {charmap.Windows1256, oneByte, false}, "WIN1257": {charmap.Windows1257, oneByte, false},
	"WIN1258": {charmap.Windows1258, oneByte, false}, "WIN866": {charmap.CodePage866, oneByte, false},
	"WIN874": {charmap.Windows874, oneByte, false}, "KOI8R": {charmap.KOI8R, oneByte, false},
	"KOI8U":  {charmap.KOI8U, oneByte, false},
	"EUC_JP": {japanese.EUCJP, eucLen, false}, "EUC_KR": {korean.EUCKR, eucLen, false},
	"EUC_CN": {simplifiedchinese.GBK, eucLen, false}, // GB2312's bytes read the same in GBK
}

func oneByte(string, int) int { return 1 }

// eucLen is pg_euc_mblen: SS2 (0x8e) starts two bytes, SS3 (0x8f) three,
// another byte above 0x7f two.
func eucLen(s string, i int) int {
	switch s[i] {
	case 0x8e:
		return 2
	case 0x8f:
		return 3
	}
	return 2
}

// converter returns how text in the client_encoding enc is converted to
// UTF-8, or ok=false when it is not (UTF8, SQL_ASCII, EUC_TW, ...).
func converter(enc string) (ce conv, ok bool) {
	name := strings.ToUpper(enc)
	if ce, ok = clientOnly[name]; ok {
		return ce, true
	}
	ce, ok = asciiSafe[name]
	return ce, ok
}

func sjisLen(s string, i int) int {
	if c := s[i]; c >= 0xa1 && c <= 0xdf {
		return 1 // half-width katakana
	}
	return 2
}

func gb18030Len(s string, i int) int {
	if i+1 < len(s) && s[i+1] >= 0x30 && s[i+1] <= 0x39 {
		return 4
	}
	return 2
}

// ConvertsEncoding reports whether text in the client_encoding enc (as
// the server reports it in ParameterStatus) must go through ClientText to
// be read, or parsed, as the server reads it.
func ConvertsEncoding(enc string) bool {
	_, ok := converter(enc)
	return ok
}

// ClientOnlyEncodings returns the client encodings in which a byte of a
// character can be an ASCII byte, in PostgreSQL's spelling and a fixed
// order: the readings of a text whose client_encoding is not known yet
// that can split it differently.
func ClientOnlyEncodings() []string {
	out := make([]string, 0, len(clientOnly))
	for name := range clientOnly {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// IsASCII reports whether s is all ASCII: then every client_encoding reads
// it the same way.
func IsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// ClientText returns text as the server reads it, in UTF-8, for a session
// whose client_encoding is enc; text in an ASCII-safe encoding is returned
// as it is. The error is ErrEncoding.
func ClientText(enc string, text string) (string, error) {
	ce, ok := converter(enc)
	if !ok || IsASCII(text) {
		return text, nil
	}
	dec := ce.enc.NewDecoder()
	var b strings.Builder
	b.Grow(len(text) + len(text)/2)
	for i := 0; i < len(text); {
		c := text[i]
		if c < 0x80 {
			b.WriteByte(c)
			i++
			continue
		}
		n := ce.mblen(text, i)
		if i+n > len(text) {
			return "", ErrEncoding
		}
		u, err := dec.String(text[i : i+n])
		if ce.c1 && c <= 0x9f {
			u, err = string(rune(c)), nil
		}
		if err != nil || !nonASCIIRunes(u) {
			return "", ErrEncoding
		}
		b.WriteString(u)
		i += n
	}
	return b.String(), nil
}

// nonASCIIRunes reports whether u is valid UTF-8 of one or more runes, none
// of them ASCII or the replacement character.
func nonASCIIRunes(u string) bool {
	if u == "" {
		return false
	}
	for _, r := range u {
		if r < 0x80 || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// ServerText is ClientText's inverse: text pgguard made (a rewrite) in the
// bytes of the client_encoding enc. The error is ErrEncoding.
func ServerText(enc, text string) (string, error) {
	ce, ok := converter(enc)
	if !ok || IsASCII(text) {
		return text, nil
	}
	out, err := ce.enc.NewEncoder().String(text)
	if err != nil {
		return "", ErrEncoding
	}
	if back, err := ClientText(enc, out); err != nil || back != text {
		return "", ErrEncoding
	}
	return out, nil
}
