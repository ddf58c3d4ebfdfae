package drivers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

// pgxTimeout bounds each pgx scenario (a few statements and up to two
// concurrent index builds), like procTimeout the subprocesses: a hang in
// the proxy fails the test instead of stalling it.
const pgxTimeout = 15 * time.Second

// pgxModes are the query exec modes whose wire traffic differs: the default
// (cache_statement: a batch is one Parse/Describe round for its new
// statements, then one Bind/Execute round, each ending with one Sync),
// exec (unnamed statements, Parse/Bind/Describe/Execute), and
// simple_protocol (a batch is one multi-statement Query).
var pgxModes = []string{"cache_statement", "exec", "simple_protocol"}

// pgxSession is a pgx connection through pgguard and the notices it got.
type pgxSession struct {
	t    *testing.T
	ctx  context.Context
	conn *pgx.Conn

	mu      sync.Mutex
	notices []string
	seq     int
}

func pgxConnect(t *testing.T, db, mode string) *pgxSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pgxTimeout)
	t.Cleanup(cancel)
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable&default_query_exec_mode=%s",
		pgtest.SuperUser, pgtest.Password, proxyAddr, db, mode))
	if err != nil {
		t.Fatal(err)
	}
	s := &pgxSession{t: t, ctx: ctx}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		s.mu.Lock()
		s.notices = append(s.notices, n.Message)
		s.mu.Unlock()
	}
	s.conn, err = pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.conn.Close(context.Background()) })
	return s
}

func (s *pgxSession) exec(sql string, args ...any) pgconn.CommandTag {
	s.t.Helper()
	tag, err := s.conn.Exec(s.ctx, sql, args...)
	if err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
	return tag
}

// wantNotice wants a notice from rule since the last call, and clears them.
func (s *pgxSession) wantNotice(rule string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.notices
	s.notices = nil
	for _, m := range got {
		if strings.HasPrefix(m, "pgguard: "+rule+":") {
			return
		}
	}
	s.t.Fatalf("notices %q, want one from %s", got, rule)
}

// wantRefusal checks that err is pgguard's refusal by rule.
func wantRefusal(t *testing.T, err error, rule string) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want pgguard's refusal by %s", err, rule)
	}
	if pe.Code != "42501" || !strings.HasPrefix(pe.Message, "pgguard: "+rule+":") {
		t.Fatalf("error %s %q, want 42501 \"pgguard: %s: ...\"", pe.Code, pe.Message, rule)
	}
}

// checks runs the queries that reveal a desynchronised session, each with a
// value not seen before, so that a result left over from an earlier query
// cannot pass for the expected one.
func (s *pgxSession) checks(when string) {
	s.t.Helper()
	fail := func(what string, got any, err error) {
		s.t.Helper()
		s.t.Fatalf("%s: %s: got %v, %v", when, what, got, err)
	}
	var one int
	if err := s.conn.QueryRow(s.ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		fail("SELECT 1", one, err)
	}
	s.seq++
	tok := fmt.Sprintf("tok-%d", s.seq)
	var txt string
	if err := s.conn.QueryRow(s.ctx, "SELECT $1::text", tok).Scan(&txt); err != nil || txt != tok {
		fail("SELECT $1", txt, err)
	}
	// In cache_statement mode the second run on uses the cached prepared
	// statement; in the others each run parses again.
	for i := 0; i < 6; i++ {
		s.seq++
		var v int
		if err := s.conn.QueryRow(s.ctx, "SELECT $1::int * 2", s.seq).Scan(&v); err != nil || v != 2*s.seq {
			fail(fmt.Sprintf("prepared SELECT run %d (%d * 2)", i+1, s.seq), v, err)
		}
	}
	n := 3 + s.seq%5
	rows, _ := s.conn.Query(s.ctx, "SELECT g FROM generate_series(1, $1::int) g", n)
	got, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if want := seqInts(n); err != nil || !slices.Equal(got, want) {
		fail(fmt.Sprintf("multi-row SELECT of %d rows", n), got, err)
	}
	// A batch of queries: one pipeline in the extended modes.
	b := &pgx.Batch{}
	b.Queue("SELECT $1::text", tok+"-batch")
	b.Queue("SELECT g FROM generate_series(1, 3) g")
	br := s.conn.SendBatch(s.ctx, b)
	if err := br.QueryRow().Scan(&txt); err != nil || txt != tok+"-batch" {
		br.Close()
		fail("batch: SELECT $1", txt, err)
	}
	rows, _ = br.Query()
	got, err = pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil || !slices.Equal(got, []int32{1, 2, 3}) {
		br.Close()
		fail("batch: multi-row SELECT", got, err)
	}
	if err := br.Close(); err != nil {
		fail("batch close", nil, err)
	}
	if st := s.conn.PgConn().TxStatus(); st != 'I' {
		fail("transaction status", string(st), nil)
	}
}

func seqInts(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i + 1)
	}
	return out
}

// pgx: QueryRow/Exec in each exec mode, batches with DDL among other
// statements, and pgconn's pipeline mode with several Syncs in flight. Each
// mode has its own database and runs in parallel with the others.
func TestPgx(t *testing.T) {
	t.Parallel()
	needPG(t)
	for _, mode := range pgxModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			db := database(t, "pgx_"+mode)
			t.Run("allowed", func(t *testing.T) { pgxAllowed(t, db, mode) })
			t.Run("rewritten", func(t *testing.T) { pgxRewritten(t, db, mode) })
			t.Run("refused", func(t *testing.T) { pgxRefused(t, db, mode) })
			switch mode {
			case "simple_protocol":
				t.Run("multi", func(t *testing.T) { pgxMulti(t, db) })
			case "cache_statement":
				// Pipeline mode is pgconn's: the exec mode does not matter.
				t.Run("pipeline", func(t *testing.T) { pgxPipeline(t, db) })
			}
		})
	}
}

func pgxAllowed(t *testing.T, db, mode string) {
	s := pgxConnect(t, db, mode)
	s.exec("CREATE TABLE t_allowed (id bigint PRIMARY KEY, v text)")
	s.checks("after CREATE TABLE")
	s.exec("CREATE INDEX small_v ON small (v)")
	s.checks("after CREATE INDEX on small")
	s.exec("CREATE TABLE t_warned (id int PRIMARY KEY)")
	s.wantNotice("prefer-bigint")
	s.checks("after a warned CREATE TABLE")

	// Allowed DDL in the middle of a batch, results read in order. (The
	// other statements use existing tables: in cache_statement mode pgx
	// prepares them all before running any.)
	b := &pgx.Batch{}
	b.Queue("SELECT $1::text", "before")
	b.Queue("CREATE TABLE t_batch (a bigint)")
	b.Queue("INSERT INTO small VALUES ($1, $2)", 2000, "batch")
	b.Queue("SELECT v FROM small WHERE id = $1", 2000)
	br := s.conn.SendBatch(s.ctx, b)
	var txt string
	if err := br.QueryRow().Scan(&txt); err != nil || txt != "before" {
		t.Fatalf("batch: SELECT $1 = %q, %v", txt, err)
	}
	if tag, err := br.Exec(); err != nil || tag.String() != "CREATE TABLE" {
		t.Fatalf("batch: CREATE TABLE = %q, %v", tag, err)
	}
	if tag, err := br.Exec(); err != nil || tag.String() != "INSERT 0 1" {
		t.Fatalf("batch: INSERT = %q, %v", tag, err)
	}
	if err := br.QueryRow().Scan(&txt); err != nil || txt != "batch" {
		t.Fatalf("batch: SELECT v = %q, %v", txt, err)
	}
	if err := br.Close(); err != nil {
		t.Fatalf("batch close: %v", err)
	}
	s.checks("after a batch with CREATE TABLE")
	checkState(t, db, []string{"t_allowed", "small_v", "t_warned", "t_batch"}, nil)
}

func pgxRewritten(t *testing.T, db, mode string) {
	var present []string
	defer func() { checkState(t, db, present, nil) }()
	s := pgxConnect(t, db, mode)
	present = append(present, "big_rw")
	if tag := s.exec("CREATE INDEX big_rw ON big (account)"); tag.String() != "CREATE INDEX" {
		t.Fatalf("command tag %q", tag)
	}
	s.wantNotice("create-index")
	s.checks("after a rewritten CREATE INDEX")

	// Alone in its batch, it is rewritten too.
	present = append(present, "big_rw_batch")
	b := &pgx.Batch{}
	b.Queue("CREATE INDEX big_rw_batch ON big (note)")
	if err := s.conn.SendBatch(s.ctx, b).Close(); err != nil {
		t.Fatalf("batch of one CREATE INDEX: %v", err)
	}
	s.wantNotice("create-index")
	s.checks("after a rewritten CREATE INDEX alone in a batch")
}

func pgxRefused(t *testing.T, db, mode string) {
	var absent []string
	defer func() { checkState(t, db, nil, absent) }()
	s := pgxConnect(t, db, mode)
	_, err := s.conn.Exec(s.ctx, "ALTER TABLE big ALTER COLUMN account TYPE bigint")
	wantRefusal(t, err, "alter-column-type")
	s.checks("after a refused ALTER")

	// Refused in the middle of a batch: the batch is one implicit
	// transaction, so the INSERT before it does not stay.
	b := &pgx.Batch{}
	b.Queue("INSERT INTO small VALUES (1000, 'refused batch')")
	b.Queue("ALTER TABLE big ALTER COLUMN account TYPE bigint")
	b.Queue("SELECT 2")
	wantRefusal(t, s.conn.SendBatch(s.ctx, b).Close(), "alter-column-type")
	var n int
	if err := s.conn.QueryRow(s.ctx, "SELECT count(*) FROM small WHERE id = 1000").Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows from the refused batch: %d, %v", n, err)
	}
	s.checks("after a batch with a refused ALTER")

	// Not alone in its batch, CREATE INDEX cannot be rewritten: refused.
	absent = append(absent, "big_batch")
	b = &pgx.Batch{}
	b.Queue("SELECT 1")
	b.Queue("CREATE INDEX big_batch ON big (note)")
	b.Queue("SELECT 2")
	wantRefusal(t, s.conn.SendBatch(s.ctx, b).Close(), "create-index")
	s.checks("after a batch with a refused CREATE INDEX")

	absent = append(absent, "big_in_tx")
	tx, err := s.conn.Begin(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.Exec(s.ctx, "CREATE INDEX big_in_tx ON big (note)")
	wantRefusal(t, err, "create-index")
	if st := s.conn.PgConn().TxStatus(); st != 'E' {
		t.Fatalf("transaction status %c after a refusal in a transaction, want E", st)
	}
	if err := tx.Rollback(s.ctx); err != nil {
		t.Fatal(err)
	}
	s.checks("after a refused CREATE INDEX in a transaction")
}

func pgxMulti(t *testing.T, db string) {
	defer func() { checkState(t, db, []string{"t_multi"}, nil) }()
	s := pgxConnect(t, db, "simple_protocol")
	// Exec without arguments in simple_protocol mode is one Query.
	if tag := s.exec("CREATE TABLE IF NOT EXISTS t_multi (a int); SELECT 1"); tag.String() != "SELECT 1" {
		t.Fatalf("command tag %q, want the last statement's", tag)
	}
	s.checks("after a multi-statement query")
	res, err := s.conn.PgConn().Exec(s.ctx, "CREATE TABLE IF NOT EXISTS t_multi (a int); SELECT 2").ReadAll()
	if err != nil || len(res) != 2 || res[0].CommandTag.String() != "CREATE TABLE" ||
		len(res[1].Rows) != 1 || string(res[1].Rows[0][0]) != "2" {
		t.Fatalf("results %v, %v; want CREATE TABLE and one row 2", res, err)
	}
	s.checks("after a multi-statement query (pgconn)")
}

// pgxPipeline uses pgconn's pipeline mode: the client sends several Syncs
// before reading anything, so the proxy judges statements while earlier
// ones are still running.
func pgxPipeline(t *testing.T, db string) {
	s := pgxConnect(t, db, "cache_statement")
	p := s.conn.PgConn().StartPipeline(s.ctx)
	p.SendQueryParams("SELECT $1::text", [][]byte{[]byte("pipe-1")}, nil, nil, nil)
	p.SendQueryParams("CREATE TABLE t_pipe (a bigint)", nil, nil, nil, nil)
	p.SendPipelineSync()
	p.SendQueryParams("CREATE INDEX big_pipe ON big (account)", nil, nil, nil, nil)
	p.SendPipelineSync()
	p.SendQueryParams("ALTER TABLE big ALTER COLUMN account TYPE bigint", nil, nil, nil, nil)
	p.SendQueryParams("SELECT 'skipped'", nil, nil, nil, nil)
	p.SendPipelineSync()
	p.SendQueryParams("SELECT g FROM generate_series(1, $1::int) g", [][]byte{[]byte("4")}, nil, nil, nil)
	p.SendPipelineSync()
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}

	// next reads the next result: rows and tag of a query, or "sync".
	next := func(what string) (rows []string, tag string, err error) {
		t.Helper()
		r, err := p.GetResults()
		if err != nil {
			return nil, "", err
		}
		switch r := r.(type) {
		case *pgconn.ResultReader:
			res := r.Read()
			for _, row := range res.Rows {
				rows = append(rows, string(row[0]))
			}
			return rows, res.CommandTag.String(), res.Err
		case *pgconn.PipelineSync:
			return nil, "sync", nil
		case nil:
			t.Fatalf("%s: no more results", what)
		}
		t.Fatalf("%s: unexpected %T", what, r)
		return nil, "", nil
	}
	want := func(what string, wantRows []string, wantTag string) {
		t.Helper()
		rows, tag, err := next(what)
		if err != nil || tag != wantTag || !slices.Equal(rows, wantRows) {
			t.Fatalf("%s: got %q %q %v, want %q %q", what, rows, tag, err, wantRows, wantTag)
		}
	}
	want("SELECT $1", []string{"pipe-1"}, "SELECT 1")
	want("CREATE TABLE", nil, "CREATE TABLE")
	want("first Sync", nil, "sync")
	// Alone before its Sync and outside a transaction block it may be
	// rewritten; pgguard may also refuse it because the connection is not
	// idle when it judges it. Either way the pipeline goes on.
	_, tag, err := next("CREATE INDEX on big")
	rewritten := err == nil
	if rewritten {
		if tag != "CREATE INDEX" {
			t.Fatalf("CREATE INDEX on big: tag %q", tag)
		}
	} else {
		wantRefusal(t, err, "create-index")
	}
	want("second Sync", nil, "sync")
	_, _, err = next("ALTER ... TYPE")
	wantRefusal(t, err, "alter-column-type")
	// After an error the server skips to Sync: the SELECT gets no result.
	want("third Sync", nil, "sync")
	want("multi-row SELECT", []string{"1", "2", "3", "4"}, "SELECT 4")
	want("fourth Sync", nil, "sync")
	if err := p.Close(); err != nil {
		t.Fatalf("pipeline close: %v", err)
	}
	s.checks("after a pipeline")
	if rewritten {
		checkState(t, db, []string{"t_pipe", "big_pipe"}, nil)
	} else {
		checkState(t, db, []string{"t_pipe"}, []string{"big_pipe"})
	}
}
