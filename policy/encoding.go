package policy

import (
	"errors"
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
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
var clientOnly = map[string]struct {
	enc   encoding.Encoding
	mblen func(s string, i int) int
}{
	"SJIS": {japanese.ShiftJIS, sjisLen},
	// SHIFT_JIS_2004 shares SJIS's bytes (pg_sjis_mblen); its characters
	// outside Shift JIS are read as ErrEncoding.
	"SHIFT_JIS_2004": {japanese.ShiftJIS, sjisLen},
	"BIG5":           {traditionalchinese.Big5, func(string, int) int { return 2 }},
	"GBK":            {simplifiedchinese.GBK, func(string, int) int { return 2 }},
	"UHC":            {korean.EUCKR, func(string, int) int { return 2 }}, // x/text's EUC-KR is windows-949, a superset
	"GB18030":        {simplifiedchinese.GB18030, gb18030Len},
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
// be read as the server reads it.
func ConvertsEncoding(enc string) bool {
	_, ok := clientOnly[strings.ToUpper(enc)]
	return ok
}

// ConvertingEncodings returns the client encodings ConvertsEncoding
// reports, in PostgreSQL's spelling and a fixed order.
func ConvertingEncodings() []string {
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
	ce, ok := clientOnly[strings.ToUpper(enc)]
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
	ce, ok := clientOnly[strings.ToUpper(enc)]
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
