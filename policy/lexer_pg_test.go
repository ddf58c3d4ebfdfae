package policy

import (
	"context"
	"fmt"
	"github.com/pgguard/pgguard/policy/sqltext"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// TestReadingMatchesServer pins pgguard's reading of a Query string to the
// server's own, under every client_encoding the server accepts and both
// values of standard_conforming_strings (and escape_string_warning and
// backslash_quote at random): generated Query strings, in the bytes of the
// session's client_encoding, go straight to a real PostgreSQL 15, which
// tells which statements it ran (a CommandComplete each, in order), which
// of them were DDL (an event trigger's notice) and which changed rows of
// the test's table (a statement trigger's notice). pgguard reads the same
// bytes as the proxy does (ClientText, then the split and the fast path
// under the session's settings) and must find as many statements, each
// starting with the word the server's tag names, every DDL statement of
// the server's classed DDL (parsed in full) and every row change classed
// DML. Text pgguard finds invalid in the encoding (ErrEncoding) is refused
// by the proxy (22021): the server must have refused it too, or that is a
// false refusal and the test fails. Characters PostgreSQL's verifier
// accepts and Go's tables cannot read (user-defined areas, JIS X 0213) are
// generated often: they must read as placeholders that split and class as
// the server's characters do.
//
// PGGUARD_READING_QUERIES sets the Query strings per encoding and setting
// (default 12), PGGUARD_READING_SEED the seed (default 1).
func TestReadingMatchesServer(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the reading check against PostgreSQL in -short mode")
	}
	perCase := envInt("PGGUARD_READING_QUERIES", 12)
	seed := int64(envInt("PGGUARD_READING_SEED", 1))
	s := pgtest.Must(t, pgtest.Options{})
	conn := readingDatabase(t, s, "reading", "CREATE DATABASE reading")
	encodings := serverClientEncodings(t, conn, 30)
	// MULE_INTERNAL is a client_encoding only where the server converts
	// to it: a database in an encoding other than UTF8 (here MULE_INTERNAL
	// itself); its Query strings run there.
	muleConn := readingDatabase(t, s, "reading_mule", "CREATE DATABASE reading_mule ENCODING 'MULE_INTERNAL' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
	dbOf := map[string]string{}
	for _, enc := range encodings {
		dbOf[enc] = "reading"
	}
	for _, enc := range serverClientEncodings(t, muleConn, 1) {
		if dbOf[enc] == "" {
			dbOf[enc] = "reading_mule"
			encodings = append(encodings, enc)
		}
	}
	if dbOf["MULE_INTERNAL"] == "" {
		t.Fatalf("no database accepts client_encoding MULE_INTERNAL: %v", encodings)
	}
	ctx := context.Background()
	eng, err := NewEngine(nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var st readingStats
	for _, c := range readingCases {
		sess := newReadingSession(t, s, "reading", c.enc, c.scsOff, rand.New(rand.NewSource(1)))
		before := st.ran
		sess.check(t, eng, c.query, &st)
		if st.ran == before {
			t.Errorf("%s: the server refused regression case %q: it tests nothing", sess.setting, c.query)
		}
		sess.conn.Close(ctx)
	}
	for _, enc := range encodings {
		cc := conn
		if dbOf[enc] != "reading" {
			cc = muleConn
		}
		chars, odd := encodingChars(t, cc, enc)
		if len(odd) > 0 {
			t.Logf("%s: %d of %d characters read as placeholders", enc, len(odd), len(chars))
		}
		for _, scsOff := range []bool{false, true} {
			r := rand.New(rand.NewSource(seed ^ int64(fnv32(enc+strconv.FormatBool(scsOff)))))
			sess := newReadingSession(t, s, dbOf[enc], enc, scsOff, r)
			for i := 0; i < perCase; i++ {
				raw := genReadingQuery(r, chars, odd, scsOff)
				sess.check(t, eng, raw, &st)
			}
			sess.conn.Close(ctx)
		}
	}
	t.Logf("%d Query strings in %d client encodings × standard_conforming_strings on/off (%s): the server ran %d (%d statements, %d DDL, %d row changes), refused %d; pgguard refused %d as unreadable",
		st.queries, len(encodings), time.Since(start).Round(time.Millisecond), st.ran, st.statements, st.ddl, st.dml, st.serverErr, st.unreadable)
	t.Logf("%d of the Query strings the server ran hold characters Go's tables cannot read (placeholders)", st.placeholder)
	if len(st.unreadableBy) > 0 {
		t.Logf("refused as unreadable, by encoding: %v", st.unreadableBy)
	}
	if st.ran < st.queries/4 {
		t.Errorf("the server ran only %d of %d Query strings: the generator makes too little valid SQL to test anything", st.ran, st.queries)
	}
}

// readingCases are Query strings pgguard once read differently from the
// server (found by this test), each under the settings that part them.
var readingCases = []struct {
	enc    string
	scsOff bool
	query  string
}{
	// A WITH's verbs and SELECT ... INTO were looked for with
	// standard_conforming_strings on: '\'' ended where the server's
	// reading does not.
	{"UTF8", true, "WITH a AS (SELECT '\\''), d AS (DELETE FROM lexdml RETURNING 1) SELECT 1 --'"},
	{"LATIN1", true, "SELECT '\\'' INTO TEMP lexinto --'"},
	// SHIFT_JIS_2004 (client-only, like SJIS) was read unconverted: the
	// trailing 0x5c of 0xfc 0x5c escaped the quote after it.
	{"SHIFT_JIS_2004", false, "SELECT E'\xfc\x5c'; DROP TABLE IF EXISTS lexhidden; --'"},
	{"SHIFT_JIS_2004", true, "SELECT '\x95\x5c'; DROP TABLE IF EXISTS lexhidden; --'"},
	{"SJIS", false, "SELECT E'\x95\x5c'; DROP TABLE IF EXISTS lexhidden; --'"},
	{"BIG5", false, "SELECT E'\xa4\x5c'; DROP TABLE IF EXISTS lexhidden; --'"},
	{"GBK", false, "SELECT E'\x81\x5c'; DROP TABLE IF EXISTS lexhidden; --'"},
	{"GB18030", false, "SELECT E'\x81\x5c'; DROP TABLE IF EXISTS lexhidden; --'"},
	// Characters PostgreSQL's maps know and Go's do not (GB18030's and
	// UHC's user-defined areas, JIS X 0213) were refused as unreadable
	// (22021) though the server ran them; they read as placeholders now.
	{"GB18030", false, "SELECT E'\xaa\xa1\x81\x5c'; CREATE TEMP TABLE \"\xfe\xfe\" (a text DEFAULT '\xaa\xa1'); --'"},
	{"UHC", true, "SELECT '\xc9\xa1'; CREATE TEMP TABLE \"x\xfe\xa1\" (a text); --'"},
	{"SHIFT_JIS_2004", false, "SELECT E'\x85\x40\xfc\x5c'; CREATE TEMP TABLE \"\xf0\x40\" (a text); --'"},
	// A BEGIN ATOMIC body was taken to end at as many ENDs as it had
	// BEGINs and CASEs, but END and CASE can be column labels there.
	{"UTF8", false, "CREATE FUNCTION pg_temp.lexf() RETURNS text LANGUAGE sql BEGIN ATOMIC SELECT 'x' END; END; SHOW work_mem"},
	{"UTF8", false, "CREATE FUNCTION pg_temp.lexg() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 case; END; DROP TABLE IF EXISTS lexhidden; SHOW work_mem"},
	{"UTF8", true, "CREATE FUNCTION pg_temp.lexg() RETURNS text LANGUAGE sql BEGIN ATOMIC SELECT '\\'' case; END; DROP TABLE IF EXISTS lexhidden; SHOW work_mem"},
	// pg_query's parser, asked where such a body ends, ended a string at
	// a -- comment that the server reads as part of its continuation.
	{"UTF8", false, "CREATE FUNCTION pg_temp.lexf() RETURNS text LANGUAGE sql BEGIN ATOMIC SELECT x''-- c';\n\n'01' END; END; SHOW work_mem\n"},
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// readingDatabase creates the database db with create and what the test
// observes the server with: a table whose row changes raise a notice, an
// event trigger that notices DDL, and lex_valid (whether bytes are valid
// text in an encoding, as the server converts them to db's).
func readingDatabase(t *testing.T, s *pgtest.Server, db, create string) *pgconn.PgConn {
	t.Helper()
	if err := s.Exec(create); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn := readingConnNotices(t, s, db, nil)
	for _, q := range []string{
		`CREATE TABLE lexdml (a text)`,
		`CREATE FUNCTION lexdml_note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'lexdml %', TG_OP; RETURN NULL; END $$`,
		`CREATE TRIGGER lexdml_u AFTER UPDATE OR DELETE ON lexdml FOR EACH STATEMENT EXECUTE FUNCTION lexdml_note()`,
		`CREATE FUNCTION lexddl_note() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'lexddl %', tg_tag; END $$`,
		`CREATE EVENT TRIGGER lexddl ON ddl_command_start EXECUTE FUNCTION lexddl_note()`,
		`CREATE FUNCTION lex_valid(b bytea, enc name) RETURNS bool LANGUAGE plpgsql AS $$
		BEGIN PERFORM convert_from(b, enc); RETURN true; EXCEPTION WHEN others THEN RETURN false; END $$`,
	} {
		if err := conn.Exec(ctx, q).Close(); err != nil {
			t.Fatalf("%s: %s: %v", db, q, err)
		}
	}
	return conn
}

func readingConnNotices(t *testing.T, s *pgtest.Server, db string, notices *[]string) *pgconn.PgConn {
	t.Helper()
	cfg, err := pgconn.ParseConfig(s.DSN(pgtest.SuperUser, db))
	if err != nil {
		t.Fatal(err)
	}
	if notices != nil {
		cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { *notices = append(*notices, n.Message) }
	}
	conn, err := pgconn.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// serverClientEncodings returns every encoding the server accepts as
// client_encoding in conn's database, at least min of them.
func serverClientEncodings(t *testing.T, conn *pgconn.PgConn, min int) []string {
	ctx := context.Background()
	res, err := conn.Exec(ctx, `SELECT DISTINCT pg_encoding_to_char(i) FROM generate_series(0, 63) i WHERE pg_encoding_to_char(i) <> '' ORDER BY 1`).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, row := range res[0].Rows {
		enc := string(row[0])
		if _, err := conn.Exec(ctx, "SET client_encoding = '"+enc+"'").ReadAll(); err == nil {
			out = append(out, enc)
		}
	}
	if err := conn.Exec(ctx, "RESET client_encoding").Close(); err != nil {
		t.Fatal(err)
	}
	if len(out) < min {
		t.Fatalf("the server accepts only %d client encodings: %v", len(out), out)
	}
	return out
}

// encodingChars returns characters of enc, as bytes, that the server
// accepts: every byte above 0x7f of a one-byte encoding, and for a
// multibyte one, candidates whose later bytes are ASCII bytes the lexer
// cares about (a backslash, a quote, a dash, a star...) or high bytes,
// built after PostgreSQL's lead-byte ranges (and the user-defined areas
// and JIS X 0213 rows that Go's tables lack), kept when convert_from
// accepts them. odd are those of them that pgguard reads as placeholders.
func encodingChars(t *testing.T, conn *pgconn.PgConn, enc string) (chars, odd []string) {
	var cands []string
	leads := []byte{0x81, 0x84, 0x85, 0x87, 0x88, 0x8e, 0x8f, 0x95, 0x9f, 0xa1, 0xa4, 0xa6, 0xa8, 0xaa, 0xad, 0xaf,
		0xb0, 0xc4, 0xc9, 0xd8, 0xe0, 0xe9, 0xeb, 0xed, 0xee, 0xef, 0xf0, 0xf5, 0xf8, 0xfa, 0xfc, 0xfe}
	trails := []byte{0x27, 0x22, 0x24, 0x2a, 0x2d, 0x2f, 0x3b, 0x40, 0x41, 0x5c, 0x60, 0x7c, 0x7e, 0x80, 0x9e, 0x9f,
		0xa1, 0xa2, 0xb1, 0xe0, 0xfc, 0xfe}
	for c := 0x80; c <= 0xff; c++ {
		cands = append(cands, string([]byte{byte(c)}))
	}
	for _, l := range leads {
		for _, tr := range trails {
			cands = append(cands, string([]byte{l, tr}))
		}
	}
	for _, c := range []string{"\x8f\xa1\xa1", "\x8f\xb0\xfe", "\x8f\xfe\xfe", "\x8e\xa1\xa1\xa1", "\x8e\xa2\xa4\xa1",
		"\x81\x30\x81\x30", "\x84\x31\xa4\x39", "\x90\x30\x81\x30", "\x81\x39\xfe\x39", "\x84\x31\xa5\x30",
		"\xfe\x39\xfe\x39", "\xe3\x32\x9a\x35", "é", "中", "\xf0\x9f\x98\x80", "\xe3\x81\x82"} {
		cands = append(cands, c)
	}
	var b strings.Builder
	b.WriteString("SELECT c FROM unnest(ARRAY[")
	for i, c := range cands {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "'\\x%x'::bytea", c)
	}
	b.WriteString("]) c WHERE lex_valid(c, '" + enc + "')")
	res, err := conn.Exec(context.Background(), b.String()).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", enc, err)
	}
	for _, row := range res[0].Rows {
		h := strings.TrimPrefix(string(row[0]), `\x`)
		var bs []byte
		for i := 0; i+1 < len(h); i += 2 {
			v, _ := strconv.ParseUint(h[i:i+2], 16, 8)
			bs = append(bs, byte(v))
		}
		chars = append(chars, string(bs))
		if u, err := sqltext.ClientText(enc, string(bs)); err == nil && sqltext.HasPlaceholder(u) {
			odd = append(odd, string(bs))
		}
	}
	if len(chars) == 0 {
		t.Fatalf("no character of %s is valid", enc)
	}
	return chars, odd
}

// readingSession is a connection to the server under one client_encoding
// and standard_conforming_strings, with its notices.
type readingSession struct {
	conn    *pgconn.PgConn
	enc     string
	scsOff  bool
	notices *[]string
	setting string
}

func newReadingSession(t *testing.T, s *pgtest.Server, db, enc string, scsOff bool, r *rand.Rand) *readingSession {
	notices := new([]string)
	conn := readingConnNotices(t, s, db, notices)
	scs := "on"
	if scsOff {
		scs = "off"
	}
	bq := []string{"on", "off", "safe_encoding"}[r.Intn(3)]
	esw := []string{"on", "off"}[r.Intn(2)]
	setting := fmt.Sprintf("client_encoding=%s standard_conforming_strings=%s backslash_quote=%s escape_string_warning=%s", enc, scs, bq, esw)
	q := fmt.Sprintf("SET client_encoding = '%s'; SET standard_conforming_strings = %s; SET backslash_quote = %s; SET escape_string_warning = %s", enc, scs, bq, esw)
	if _, err := conn.Exec(context.Background(), q).ReadAll(); err != nil {
		t.Fatalf("%s: %v", setting, err)
	}
	return &readingSession{conn: conn, enc: enc, scsOff: scsOff, notices: notices, setting: setting}
}

// serverRun is what the server did with a Query string.
type serverRun struct {
	tags []string // one command tag per statement that ran
	ddl  []bool   // the statement was DDL (the event trigger fired)
	dml  []bool   // the statement changed rows of lexdml (or tried to)
	err  error    // the Query failed: nothing of it stays
}

// run sends raw in a transaction that is rolled back, so that nothing a
// Query does (a temporary table) changes the next one.
func (rs *readingSession) run(t *testing.T, raw string) serverRun {
	ctx := context.Background()
	if err := rs.conn.Exec(ctx, "BEGIN").Close(); err != nil {
		t.Fatal(err)
	}
	*rs.notices = (*rs.notices)[:0]
	var run serverRun
	mrr := rs.conn.Exec(ctx, raw)
	for mrr.NextResult() {
		tag, err := mrr.ResultReader().Close()
		if err != nil {
			run.err = err
			continue
		}
		ddl, dml := false, false
		for _, n := range *rs.notices {
			ddl = ddl || strings.HasPrefix(n, "lexddl ")
			dml = dml || strings.HasPrefix(n, "lexdml ")
		}
		*rs.notices = (*rs.notices)[:0]
		if tag.String() == "" {
			continue // EmptyQueryResponse: the Query held no statement
		}
		run.tags = append(run.tags, tag.String())
		run.ddl = append(run.ddl, ddl)
		run.dml = append(run.dml, dml)
	}
	if err := mrr.Close(); err != nil && run.err == nil {
		run.err = err
	}
	if err := rs.conn.Exec(ctx, "ROLLBACK").Close(); err != nil {
		t.Fatal(err)
	}
	return run
}

type readingStats struct {
	queries, ran, statements, ddl, dml, serverErr, unreadable int
	// placeholder: Query strings the server ran that hold a character
	// Go's tables cannot read (read as a placeholder).
	placeholder  int
	unreadableBy map[string]int
}

// check runs raw on the server and compares pgguard's reading of it.
func (rs *readingSession) check(t *testing.T, eng *Engine, raw string, st *readingStats) {
	t.Helper()
	st.queries++
	run := rs.run(t, raw)
	if run.err != nil {
		st.serverErr++
		if testing.Verbose() && os.Getenv("PGGUARD_READING_ERRORS") != "" {
			t.Logf("%s: %q: %v", rs.setting, raw, run.err)
		}
		return // nothing of it ran
	}
	st.ran++
	st.statements += len(run.tags)
	text, err := sqltext.ClientText(rs.enc, raw)
	if err != nil {
		st.unreadable++
		if st.unreadableBy == nil {
			st.unreadableBy = map[string]int{}
		}
		st.unreadableBy[rs.enc]++
		// The proxy would refuse (22021) what the server ran: pgguard
		// reads validity by PostgreSQL's own verifiers, so this is a
		// false refusal.
		t.Errorf("%s: the server ran %q, pgguard refuses it as unreadable", rs.setting, raw)
		return
	}
	if sqltext.HasPlaceholder(text) {
		st.placeholder++
	}
	judged := text
	if rs.scsOff {
		judged, _ = sqltext.StandardText(text)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s\nQuery %q\nserver ran %q (ddl %v, dml %v)\npgguard read %s\n%s",
			rs.setting, raw, run.tags, run.ddl, run.dml, showStatements(judged), fmt.Sprintf(format, args...))
	}
	// As DecideQuery reads it: split where the server splits, each
	// statement classed (and parsed) as the text that means the same with
	// standard_conforming_strings on.
	stmts := sqltext.SplitStrings(judged, false)
	if len(stmts) != len(run.tags) {
		fail("pgguard reads %d statements, the server ran %d", len(stmts), len(run.tags))
		return
	}
	anyDDL, anyDML := false, false
	for i, s := range stmts {
		cls := sqltext.Classify(s.Text)
		parsed := cls == sqltext.ClassDDL || eng.needsParse(cls, s.Text, true)
		if w := tagWord(s.Text); w != "" && !strings.HasPrefix(run.tags[i], w) {
			fail("statement %d starts with %s, the server's tag is %q", i+1, w, run.tags[i])
		}
		if parsed {
			// The server ran it, so the parser must read it: a parse
			// error refuses DDL and leaves DML unjudged.
			if _, err := sqltext.ParseStatement(s.Text, sqltext.DefaultMaxStatementBytes); err != nil {
				fail("statement %d, which the server ran, does not parse: %v", i+1, err)
			}
		}
		if run.ddl[i] {
			st.ddl++
			anyDDL = true
			if !parsed {
				fail("statement %d is DDL on the server, class %d in pgguard, not parsed", i+1, cls)
			}
		}
		if run.dml[i] {
			st.dml++
			anyDML = true
			if cls != sqltext.ClassDDL && cls != sqltext.ClassDML {
				fail("statement %d changes rows on the server, class %d in pgguard", i+1, cls)
			}
		}
	}
	n, plain, dml := eng.PlainDML(text, rs.scsOff)
	switch {
	case plain && anyDDL:
		fail("the fast path lets DDL through")
	case plain && anyDML && !dml:
		fail("the fast path lets a row change through unseen by a migration's session")
	case plain && n != len(run.tags):
		fail("the fast path counts %d statements", n)
	}
}

// tagWord returns the command tag's first word a statement starting with
// its first word must have, or "" when it may vary (WITH).
func tagWord(text string) string {
	t, _ := sqltext.FirstWord(text)
	if t.Kind != sqltext.TokWord {
		return ""
	}
	switch w := strings.ToUpper(text[t.Start:t.End]); w {
	case "WITH":
		return ""
	case "VALUES", "TABLE":
		return "SELECT"
	case "END":
		return "COMMIT"
	case "ABORT":
		return "ROLLBACK"
	default:
		return w
	}
}

func showStatements(text string) string {
	var b strings.Builder
	for _, s := range sqltext.SplitStrings(text, false) {
		fmt.Fprintf(&b, "\n  [%q class %d]", s.Text, sqltext.Classify(s.Text))
	}
	return b.String()
}

// genReadingQuery returns a random Query string in the bytes of an
// encoding whose characters are chars (a quarter of them from odd, the
// characters Go's tables cannot read, when there are any): statements whose tags tell them
// apart (SELECT, VALUES, SHOW, CREATE TABLE, DROP TABLE, DELETE, WITH with
// and without a DELETE, SELECT INTO), with string literals of every kind,
// continuations, comments, quoted identifiers and dollar quotes whose
// bodies hold semicolons, statements, backslashes and the encoding's
// characters.
func genReadingQuery(r *rand.Rand, chars, odd []string, scsOff bool) string {
	pick := func(xs ...string) string { return xs[r.Intn(len(xs))] }
	char := func() string {
		if r.Intn(40) == 0 {
			return pick("\x95", "\xff\x5c") // invalid in most encodings
		}
		if len(odd) > 0 && r.Intn(4) == 0 {
			return odd[r.Intn(len(odd))]
		}
		return chars[r.Intn(len(chars))]
	}
	// body is a string's body: mostly text the server accepts in any
	// kind of string, sometimes a backslash, a quote or a whole statement
	// that one reading ends the string before and another does not.
	body := func(kind string) string {
		var b strings.Builder
		for n := r.Intn(7); n > 0; n-- {
			switch {
			case kind == "bits":
				b.WriteString(pick("0", "1", "01", "10"))
			case kind == "" && r.Intn(12) == 0:
				// A character whose last byte may be a backslash, then
				// a quote: where the string ends depends on the reading.
				b.WriteString(char() + "'; DROP TABLE IF EXISTS lexhidden; --\n")
			case r.Intn(3) == 0:
				b.WriteString(char())
			case kind == "unicode" || r.Intn(3) > 0:
				b.WriteString(pick("a", " ", ";", "''", `"`, "--", "/*", "*/", "$$", "$a$", "\n", "\n", "\r", "; SELECT 5; --"))
			default:
				b.WriteString(pick(`\`, `\'`, `\\`, "'", "E'", `\x41`, "; DROP TABLE IF EXISTS lexhidden; --", "'; DELETE FROM lexdml; --",
					"'; DROP TABLE IF EXISTS lexhidden; SELECT '", `\'; DROP TABLE IF EXISTS lexhidden; SELECT \'`))
			}
		}
		return b.String()
	}
	sep := func() string {
		switch r.Intn(9) {
		case 0:
			return "/* " + body("") + " */"
		case 1:
			return "/* /* " + char() + " */ " + char() + " */"
		case 2:
			return "-- " + body("") + "\n"
		case 3:
			return "-- " + char() + "\n"
		}
		return pick(" ", "\n", "\t")
	}
	cont := func() string {
		return pick("\n", " \n ", "\t-- c\n", "\n-- "+char()+"\n  ", " ", "/* c */\n", "\r", "\n\n", "-- c", "\n")
	}
	str := func() string {
		prefix := pick("", "", "", "E", "e", "U&", "b", "x", "N", "E")
		kind := ""
		switch prefix {
		case "b", "x":
			kind = "bits"
		case "U&":
			if scsOff {
				prefix = "" // the server refuses U&'' then
			} else {
				kind = "unicode"
			}
		}
		s := prefix + "'" + body(kind) + "'"
		for r.Intn(3) == 0 {
			s += cont() + "'" + body(kind) + "'"
		}
		return s
	}
	ident := func() string {
		return `"` + strings.ReplaceAll(pick("a", char(), char()+char(), "a;b", `a\`, "x"+char()), `"`, `""`) + `"`
	}
	expr := func() string {
		switch r.Intn(10) {
		case 0:
			return pick("1", "$$a;b$$", "$a$ ; ' $$ $a$", "$"+pick("q", "a")+"$"+body("")+"$"+pick("q", "a")+"$", "(1)")
		case 1:
			return str() + " AS " + ident()
		case 2:
			// Words, dollar tags and operators around the encoding's
			// characters and comments.
			tag := "$" + pick("q", "x"+char()) + "$"
			return pick(tag+body("")+tag, str()+" AS x"+char(), "2 */* "+char()+" */ 3", "2 +-- "+char()+"\n 3",
				"1 AS a$"+char(), "2 -"+sep()+"1")
		case 3:
			if !scsOff {
				return "U&'" + body("unicode") + "' UESCAPE '" + pick("!", "\\", "#") + "'"
			}
		}
		return str()
	}
	var b strings.Builder
	if r.Intn(4) == 0 {
		b.WriteString(sep())
	}
	for n := 1 + r.Intn(3); n > 0; n-- {
		switch r.Intn(13) {
		case 0:
			b.WriteString("SHOW work_mem")
		case 1:
			b.WriteString("VALUES (" + expr() + ")")
		case 2:
			b.WriteString("DROP TABLE IF EXISTS lexgone" + sep())
		case 3:
			b.WriteString("CREATE TEMP TABLE IF NOT EXISTS lext (a text DEFAULT " + str() + ")")
		case 4:
			b.WriteString("DELETE FROM lexdml WHERE a =" + sep() + str())
		case 5:
			b.WriteString("WITH a AS (SELECT " + expr() + ") SELECT 1")
		case 6:
			b.WriteString("WITH a AS (SELECT " + expr() + "), d AS (DELETE FROM lexdml WHERE a = " + str() + " RETURNING 1) SELECT 1")
		case 7:
			b.WriteString("SELECT " + str() + " INTO TEMP lexinto" + sep())
		case 8:
			b.WriteString("CREATE FUNCTION pg_temp.lexf() RETURNS text LANGUAGE sql BEGIN ATOMIC SELECT " + expr() + "; SELECT CASE WHEN true THEN " + str() + " END; END")
		default:
			b.WriteString("SELECT" + sep())
			for m := 1 + r.Intn(3); m > 0; m-- {
				b.WriteString(expr())
				if m > 1 {
					b.WriteString("," + sep())
				}
			}
		}
		b.WriteString(pick(";", "; ", ";\n", " ; ", ";"+sep()))
	}
	return b.String()
}
