package sqltext

import (
	"errors"
	"fmt"
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
// (pg_johab_verifychar), so it is ASCII-safe.
//
// Which bytes make a valid character, and how many, is PostgreSQL's rule
// (its pg_*_verifier in wchar.c, which the conversion from client_encoding
// applies to each character), never the Go decoder's: bytes PostgreSQL's
// verifier refuses are refused (the server refuses them with 22021), and
// bytes it accepts are read. Each character is then decoded on its own with
// the Go tables (golang.org/x/text, the WHATWG mappings). Where those cannot
// decode a character PostgreSQL's own maps may know (GB18030's and UHC's
// user-defined areas, JIS X 0213 characters of SHIFT_JIS_2004, ...), or
// would read it as ASCII, the character is read as a placeholder: runes of
// Unicode's noncharacters U+FDD0-U+FDEF that spell its bytes (two per
// byte), which no encoding's table maps to. The server's scanner takes any
// character above 0x7f as a letter of an identifier or a character of a
// string, so a placeholder splits, classes and parses the statement exactly
// as the real character would. What it can change is the name or literal it
// stands in: a table "t<char>" is looked up in the catalog (and in the
// session's memory of its own DDL) as "t" plus the placeholder, which names
// no relation on the server (so a catalog question about it finds nothing),
// and its length in bytes differs from the character's UTF-8 (63-byte
// truncation of identifiers). Distinct characters get distinct
// placeholders, and a rewrite (ServerText) writes back the character's own
// bytes. When the server's maps do not know the character either, the
// server refuses the whole message while converting it (22P05), before any
// statement of it runs.

// ErrEncoding is returned by ClientText for text that pgguard cannot read
// with certainty in the session's client_encoding.
var ErrEncoding = errors.New("text pgguard cannot read with certainty in the session's client_encoding")

// clientOnly maps PostgreSQL's names of the client-only encodings that can
// hide ASCII bytes to their Go decoders and PostgreSQL's verifiers.
var clientOnly = map[string]conv{
	"SJIS": {japanese.ShiftJIS, sjisVerify, false},
	// SHIFT_JIS_2004 shares SJIS's bytes (pg_sjis_verifier); its JIS X
	// 0213 characters outside Shift JIS read as placeholders.
	"SHIFT_JIS_2004": {japanese.ShiftJIS, sjisVerify, false},
	"BIG5":           {traditionalchinese.Big5, twoByteVerify, false},
	"GBK":            {simplifiedchinese.GBK, twoByteVerify, false},
	"UHC":            {korean.EUCKR, twoByteVerify, false}, // x/text's EUC-KR is windows-949, a superset
	"GB18030":        {simplifiedchinese.GB18030, gb18030Verify, false},
}

// conv is how one client encoding is converted: Go's decoder, and
// PostgreSQL's verifier of the character a byte above 0x7f starts.
type conv struct {
	enc encoding.Encoding
	// verify returns the length of the character starting at s[i], a
	// byte above 0x7f, or -1 when PostgreSQL refuses it (pg_*_verifier).
	verify func(s string, i int) int
	// c1: PostgreSQL reads the bytes 0x80-0x9f as U+0080-U+009F, which
	// Go's ISO 8859 tables leave undefined.
	c1 bool
}

// asciiSafe maps PostgreSQL's names of the ASCII-safe client encodings
// that Go can read to their decoders and verifiers. The lexer
// reads their bytes as the server does, but pg_query's parser takes only
// UTF-8 (any other byte above 0x7f fails its parse), so their text is
// converted too. EUC_TW, EUC_JIS_2004, JOHAB and MULE_INTERNAL, which Go
// has no tables for, are converted to placeholders only (enc nil): every
// character PostgreSQL's verifier accepts is a placeholder, which splits,
// classes and parses as the character does, and is written back as its own
// bytes (ServerText), so a name in a catalog question is the client's. Go's
// EUC-JP table is not used for EUC_JIS_2004: its plane 2 (SS3) is JIS X
// 0213, not the JIS X 0212 of EUC-JP, and a few JIS X 0208 rows map to
// other code points in PostgreSQL's table (wave dash): a wrong character
// could name another relation, a placeholder names none.
var asciiSafe = map[string]conv{
	"EUC_TW": {nil, euctwVerify, false}, "EUC_JIS_2004": {nil, eucjpVerify, false},
	"JOHAB": {nil, johabVerify, false}, "MULE_INTERNAL": {nil, muleVerify, false},
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
	"EUC_JP": {japanese.EUCJP, eucjpVerify, false}, "EUC_KR": {korean.EUCKR, euckrVerify, false},
	"EUC_CN": {simplifiedchinese.GBK, euckrVerify, false}, // GB2312's bytes read the same in GBK; pg_euccn_verifier is pg_euckr_verifier
}

// oneByte is pg_latin1_verifier: every byte is a character.
func oneByte(string, int) int { return 1 }

// eucValid is IS_EUC_RANGE_VALID.
func eucValid(c byte) bool { return c >= 0xa1 && c <= 0xfe }

// eucjpVerify is pg_eucjp_verifier: SS2 (0x8e) and a byte 0xa1-0xdf, SS3
// (0x8f) and two bytes 0xa1-0xfe, or two bytes 0xa1-0xfe.
func eucjpVerify(s string, i int) int {
	switch s[i] {
	case 0x8e:
		if i+2 > len(s) || s[i+1] < 0xa1 || s[i+1] > 0xdf {
			return -1
		}
		return 2
	case 0x8f:
		if i+3 > len(s) || !eucValid(s[i+1]) || !eucValid(s[i+2]) {
			return -1
		}
		return 3
	}
	if i+2 > len(s) || !eucValid(s[i]) || !eucValid(s[i+1]) {
		return -1
	}
	return 2
}

// euctwVerify is pg_euctw_verifier: SS2 (0x8e), a byte 0xa1-0xa7 and two
// bytes 0xa1-0xfe (CNS 11643 planes 1-7), never SS3 (0x8f), else any byte
// above 0x7f and a byte 0xa1-0xfe.
func euctwVerify(s string, i int) int {
	switch s[i] {
	case 0x8e:
		if i+4 > len(s) || s[i+1] < 0xa1 || s[i+1] > 0xa7 || !eucValid(s[i+2]) || !eucValid(s[i+3]) {
			return -1
		}
		return 4
	case 0x8f:
		return -1
	}
	if i+2 > len(s) || !eucValid(s[i+1]) {
		return -1
	}
	return 2
}

// johabVerify is pg_johab_verifier: pg_euc_mblen's length (3 after SS3,
// 0x8f; else 2), every byte after the first 0xa1-0xfe.
func johabVerify(s string, i int) int {
	n := 2
	if s[i] == 0x8f {
		n = 3
	}
	if i+n > len(s) {
		return -1
	}
	for j := i + 1; j < i+n; j++ {
		if !eucValid(s[j]) {
			return -1
		}
	}
	return n
}

// muleVerify is pg_mule_verifier: pg_mule_mblen's length by the leading
// byte (0x81-0x8d: 2; 0x9a, 0x9b, 0x90-0x99: 3; 0x9c, 0x9d: 4; any other:
// 1), every byte after the first above 0x7f.
func muleVerify(s string, i int) int {
	c, n := s[i], 1
	switch {
	case c >= 0x81 && c <= 0x8d:
		n = 2
	case c == 0x9a || c == 0x9b || c >= 0x90 && c <= 0x99:
		n = 3
	case c == 0x9c || c == 0x9d:
		n = 4
	}
	if i+n > len(s) {
		return -1
	}
	for j := i + 1; j < i+n; j++ {
		if s[j] < 0x80 {
			return -1
		}
	}
	return n
}

// euckrVerify is pg_euckr_verifier (and EUC_CN's): two bytes 0xa1-0xfe.
func euckrVerify(s string, i int) int {
	if i+2 > len(s) || !eucValid(s[i]) || !eucValid(s[i+1]) {
		return -1
	}
	return 2
}

// sjisVerify is pg_sjis_verifier: 0xa1-0xdf alone (half-width katakana),
// else a lead 0x81-0x9f or 0xe0-0xfc and a trail 0x40-0x7e or 0x80-0xfc.
func sjisVerify(s string, i int) int {
	c := s[i]
	if c >= 0xa1 && c <= 0xdf {
		return 1
	}
	if i+2 > len(s) {
		return -1
	}
	t := s[i+1]
	if !(c >= 0x81 && c <= 0x9f || c >= 0xe0 && c <= 0xfc) || !(t >= 0x40 && t <= 0x7e || t >= 0x80 && t <= 0xfc) {
		return -1
	}
	return 2
}

// twoByteVerify is pg_big5_verifier, pg_gbk_verifier and pg_uhc_verifier:
// any byte above 0x7f and the byte after it, if that is not NUL.
func twoByteVerify(s string, i int) int {
	if i+2 > len(s) || s[i+1] == 0 {
		return -1
	}
	return 2
}

// gb18030Verify is pg_gb18030_verifier: four bytes 0x81-0xfe, 0x30-0x39,
// 0x81-0xfe, 0x30-0x39, or two bytes 0x81-0xfe, 0x40-0x7e or 0x80-0xfe.
func gb18030Verify(s string, i int) int {
	c := s[i]
	if i+4 <= len(s) && s[i+1] >= 0x30 && s[i+1] <= 0x39 {
		if c >= 0x81 && c <= 0xfe && s[i+2] >= 0x81 && s[i+2] <= 0xfe && s[i+3] >= 0x30 && s[i+3] <= 0x39 {
			return 4
		}
		return -1
	}
	if i+2 <= len(s) && c >= 0x81 && c <= 0xfe {
		if t := s[i+1]; t >= 0x40 && t <= 0x7e || t >= 0x80 && t <= 0xfe {
			return 2
		}
	}
	return -1
}

// converter returns how text in the client_encoding enc is converted to
// UTF-8, or ok=false when it is not (UTF8, SQL_ASCII).
func converter(enc string) (ce conv, ok bool) {
	name := strings.ToUpper(enc)
	if ce, ok = clientOnly[name]; ok {
		return ce, true
	}
	ce, ok = asciiSafe[name]
	return ce, ok
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
// whose client_encoding is enc; text in an encoding that is not converted
// is returned as it is. A character the Go tables cannot read is a
// placeholder (see above). The error is ErrEncoding: bytes PostgreSQL's
// verifier refuses.
func ClientText(enc string, text string) (string, error) {
	ce, ok := converter(enc)
	if !ok || IsASCII(text) {
		return text, nil
	}
	var dec *encoding.Decoder
	if ce.enc != nil {
		dec = ce.enc.NewDecoder()
	}
	var b strings.Builder
	b.Grow(len(text) + len(text)/2)
	for i := 0; i < len(text); {
		c := text[i]
		if c < 0x80 {
			b.WriteByte(c)
			i++
			continue
		}
		n := ce.verify(text, i)
		if n < 0 {
			return "", ErrEncoding
		}
		u, err := "", error(nil)
		switch {
		case ce.c1 && c <= 0x9f:
			u = string(rune(c))
		case dec != nil:
			u, err = dec.String(text[i : i+n])
		}
		if err != nil || !nonASCIIRunes(u) {
			writePlaceholder(&b, text[i:i+n])
		} else {
			b.WriteString(u)
		}
		i += n
	}
	return b.String(), nil
}

// placeholderBase is the first of the 32 noncharacters U+FDD0-U+FDEF: a
// byte b of a character Go cannot read is U+FDD0+b>>4, U+FDE0+b&15.
const placeholderBase = 0xFDD0

// writePlaceholder writes the placeholder of the character whose bytes are c.
func writePlaceholder(b *strings.Builder, c string) {
	for j := 0; j < len(c); j++ {
		b.WriteRune(rune(placeholderBase + int(c[j]>>4)))
		b.WriteRune(rune(placeholderBase + 16 + int(c[j]&15)))
	}
}

// isPlaceholder reports whether r is a rune of a placeholder.
func isPlaceholder(r rune) bool { return r >= placeholderBase && r < placeholderBase+32 }

// HasPlaceholder reports whether text, read by ClientText, holds a
// character the Go tables could not read.
func HasPlaceholder(text string) bool {
	return strings.IndexFunc(text, isPlaceholder) >= 0
}

// nonASCIIRunes reports whether u is valid UTF-8 of one or more runes, none
// of them ASCII, the replacement character or a placeholder's.
func nonASCIIRunes(u string) bool {
	if u == "" {
		return false
	}
	for _, r := range u {
		if r < 0x80 || r == utf8.RuneError || isPlaceholder(r) {
			return false
		}
	}
	return true
}

// ServerText is ClientText's inverse: text pgguard made (a rewrite) in the
// bytes of the client_encoding enc, a placeholder written back as the
// bytes it stands for. The error is ErrEncoding.
func ServerText(enc, text string) (string, error) {
	ce, ok := converter(enc)
	if !ok || IsASCII(text) {
		return text, nil
	}
	var encd *encoding.Encoder
	if ce.enc != nil {
		encd = ce.enc.NewEncoder()
	}
	var b strings.Builder
	for rest := text; len(rest) > 0; {
		// The longest run without a placeholder, then the placeholder's
		// runes, two per byte.
		k := strings.IndexFunc(rest, isPlaceholder)
		if k < 0 {
			k = len(rest)
		}
		if k > 0 {
			out := rest[:k]
			var err error
			switch {
			case encd != nil:
				out, err = encd.String(out)
			case !IsASCII(out):
				err = ErrEncoding // only placeholders stand for its characters
			}
			if err != nil {
				return "", ErrEncoding
			}
			b.WriteString(out)
			rest = rest[k:]
			continue
		}
		hi, n1 := utf8.DecodeRuneInString(rest)
		lo, n2 := utf8.DecodeRuneInString(rest[n1:])
		if hi-placeholderBase >= 16 || lo-placeholderBase < 16 || !isPlaceholder(lo) {
			return "", ErrEncoding
		}
		b.WriteByte(byte((hi-placeholderBase)<<4 | (lo - placeholderBase - 16)))
		rest = rest[n1+n2:]
	}
	out := b.String()
	if back, err := ClientText(enc, out); err != nil || back != text {
		return "", ErrEncoding
	}
	return out, nil
}

// MessageText is text of pgguard's own (a refusal, a warning) in the bytes
// of the client_encoding enc, as the server writes its messages: the
// names in it that pgguard read from the client's statement (a placeholder
// as the bytes it stands for) in the client's own bytes, and a character
// the encoding cannot write as '?'.
func MessageText(enc, text string) string {
	if out, err := ServerText(enc, text); err == nil {
		return out
	}
	ce, ok := converter(enc)
	if !ok {
		return text
	}
	var b strings.Builder
	for _, r := range text {
		switch {
		case r < 0x80 || isPlaceholder(r):
			b.WriteRune(r)
		case ce.enc == nil:
			b.WriteByte('?')
		default:
			if _, err := ce.enc.NewEncoder().String(string(r)); err != nil {
				b.WriteByte('?')
			} else {
				b.WriteRune(r)
			}
		}
	}
	if out, err := ServerText(enc, b.String()); err == nil {
		return out
	}
	// A placeholder cut from its character: only ASCII is certain.
	var a strings.Builder
	for _, r := range text {
		if r >= 0x80 {
			r = '?'
		}
		a.WriteRune(r)
	}
	return a.String()
}

// UnicodeEscaped rewrites the non-ASCII characters of text's '...'
// literals and "..." identifiers as Unicode escapes (U&'...', U&"..."),
// which the server reads in any client_encoding when its own is UTF8 and
// standard_conforming_strings is on (else it fails the query). It is for
// pgguard's own queries about a name the client wrote with such escapes
// (U&"\8868") in an encoding that cannot spell it (LATIN1), which
// ServerText cannot write. ok is false when a non-ASCII character is
// elsewhere (a word, an E'...' or $$ string, a comment) or is a
// placeholder.
func UnicodeEscaped(text string) (string, bool) {
	var b strings.Builder
	l := Lexer{Src: text}
	last := 0
	for {
		t := l.Next()
		if t.Kind == TokEOF {
			break
		}
		tok := text[t.Start:t.End]
		if IsASCII(tok) {
			continue
		}
		var quote byte
		switch {
		case t.Kind == TokString && tok[0] == '\'':
			quote = '\''
		case t.Kind == TokQuoted && tok[0] == '"':
			quote = '"'
		default:
			return "", false
		}
		if len(tok) < 2 || tok[len(tok)-1] != quote {
			return "", false
		}
		b.WriteString(text[last:t.Start])
		b.WriteString("U&")
		b.WriteByte(quote)
		for _, r := range tok[1 : len(tok)-1] {
			switch {
			case r == utf8.RuneError || isPlaceholder(r):
				return "", false
			case r == '\\':
				b.WriteString(`\\`)
			case r < 0x80:
				b.WriteRune(r)
			case r <= 0xFFFF:
				fmt.Fprintf(&b, `\%04X`, r)
			default:
				fmt.Fprintf(&b, `\+%06X`, r)
			}
		}
		b.WriteByte(quote)
		last = t.End
	}
	b.WriteString(text[last:])
	return b.String(), true
}
