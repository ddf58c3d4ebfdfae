package proxy

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgguard/pgguard/internal/testkit/pgtest"
)

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("connect through pgguard: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestPgxProtocolPaths(t *testing.T) {
	_, addr := startProxy(t, nil)
	ctx := context.Background()
	for _, mode := range []string{"simple_protocol", "exec", "cache_statement", "cache_describe", "describe_exec"} {
		t.Run(mode, func(t *testing.T) {
			conn := connect(t, dsn(addr, pgtest.SuperUser, "default_query_exec_mode="+mode))
			var sum int64
			var txt string
			if err := conn.QueryRow(ctx, "SELECT sum(g), string_agg(g::text, ',') FROM generate_series(1, $1::int) g", 100).Scan(&sum, &txt); err != nil {
				t.Fatal(err)
			}
			if sum != 5050 || !strings.HasPrefix(txt, "1,2,3") {
				t.Fatalf("got %d %q", sum, txt[:10])
			}
			// An error leaves the session usable and in sync.
			if _, err := conn.Exec(ctx, "SELECT 1/0"); err == nil {
				t.Fatal("division by zero succeeded")
			}
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "CREATE TEMP TABLE t_"+mode+"(a int)"); err != nil {
				t.Fatal(err)
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			if conn.PgConn().TxStatus() != 'I' {
				t.Fatalf("tx status %c after rollback", conn.PgConn().TxStatus())
			}
		})
	}
}

func TestPgxBatchPipeline(t *testing.T) {
	_, addr := startProxy(t, nil)
	ctx := context.Background()
	conn := connect(t, dsn(addr, pgtest.SuperUser, ""))
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE batch_t(id int primary key, v text)"); err != nil {
		t.Fatal(err)
	}
	b := &pgx.Batch{}
	b.Queue("SELECT 1")
	for i := 0; i < 200; i++ {
		b.Queue("INSERT INTO batch_t VALUES ($1, $2)", i, strings.Repeat("x", i))
	}
	b.Queue("SELECT count(*), sum(length(v)) FROM batch_t")
	br := conn.SendBatch(ctx, b)
	for i := 0; i < 201; i++ {
		if _, err := br.Exec(); err != nil {
			t.Fatalf("batch item %d: %v", i, err)
		}
	}
	var n, l int64
	if err := br.QueryRow().Scan(&n, &l); err != nil {
		t.Fatal(err)
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	if n != 200 || l != 199*200/2 {
		t.Fatalf("count=%d sum=%d", n, l)
	}
	// A pipeline whose middle statement fails: PostgreSQL skips the rest up
	// to Sync, and the session stays usable.
	b = &pgx.Batch{}
	b.Queue("INSERT INTO batch_t VALUES (1000, 'a')")
	b.Queue("INSERT INTO batch_t VALUES (1, 'dup')")
	b.Queue("INSERT INTO batch_t VALUES (1001, 'b')")
	err := conn.SendBatch(ctx, b).Close()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		t.Fatalf("err = %v, want unique violation", err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM batch_t WHERE id >= 1000").Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows from the failed implicit transaction: %d, %v", n, err)
	}
}

func TestPgxCopy(t *testing.T) {
	_, addr := startProxy(t, nil)
	ctx := context.Background()
	conn := connect(t, dsn(addr, pgtest.SuperUser, ""))
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE copy_t(id int, v text)"); err != nil {
		t.Fatal(err)
	}
	rows := make([][]any, 50000)
	for i := range rows {
		rows[i] = []any{int32(i), "row"}
	}
	n, err := conn.CopyFrom(ctx, pgx.Identifier{"copy_t"}, []string{"id", "v"}, pgx.CopyFromRows(rows))
	if err != nil || n != 50000 {
		t.Fatalf("COPY FROM: %d, %v", n, err)
	}
	var buf bytes.Buffer
	tag, err := conn.PgConn().CopyTo(ctx, &buf, "COPY copy_t TO STDOUT")
	if err != nil || tag.RowsAffected() != 50000 {
		t.Fatalf("COPY TO: %v, %v", tag, err)
	}
	if lines := bytes.Count(buf.Bytes(), []byte("\n")); lines != 50000 {
		t.Fatalf("COPY TO returned %d lines", lines)
	}
	// COPY FROM STDIN that the server rejects midway keeps the session in sync.
	_, err = conn.PgConn().CopyFrom(ctx, strings.NewReader("1\tok\nnot-a-number\tbad\n"), "COPY copy_t FROM STDIN")
	if err == nil {
		t.Fatal("bad COPY data accepted")
	}
	var count int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM copy_t").Scan(&count); err != nil || count != 50000 {
		t.Fatalf("after failed COPY: %d, %v", count, err)
	}
}

func TestPgxListenNotify(t *testing.T) {
	_, addr := startProxy(t, nil)
	ctx := context.Background()
	listener := connect(t, dsn(addr, pgtest.SuperUser, ""))
	notifier := connect(t, dsn(addr, pgtest.TrustUser, ""))
	if _, err := listener.Exec(ctx, "LISTEN pgguard_chan"); err != nil {
		t.Fatal(err)
	}
	if _, err := notifier.Exec(ctx, "SELECT pg_notify('pgguard_chan', 'hello')"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := listener.WaitForNotification(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Channel != "pgguard_chan" || n.Payload != "hello" {
		t.Fatalf("notification %+v", n)
	}
}

func TestPgxCancelRequest(t *testing.T) {
	_, addr := startProxy(t, nil)
	conn := connect(t, dsn(addr, pgtest.SuperUser, ""))
	go func() {
		time.Sleep(300 * time.Millisecond)
		conn.PgConn().CancelRequest(context.Background())
	}()
	_, err := conn.Exec(context.Background(), "SELECT pg_sleep(30)")
	if pgCode(err) != "57014" {
		t.Fatalf("err = %v, want 57014 query_canceled", err)
	}
	var one int
	if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("session unusable after cancel: %v", err)
	}
}

// pgx's default reaction to a context deadline is to give up on the
// connection; the proxy then cancels the statement on the server.
func TestPgxContextDeadline(t *testing.T) {
	_, addr := startProxy(t, nil)
	conn := connect(t, dsn(addr, pgtest.SuperUser, "application_name=deadline"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := conn.Exec(ctx, "SELECT pg_sleep(30)")
	if err == nil {
		t.Fatal("pg_sleep(30) was not cancelled")
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("cancel took %v", el)
	}
	waitGone(t, "deadline")
}

func TestPgxLargeResult(t *testing.T) {
	_, addr := startProxy(t, nil)
	ctx := context.Background()
	for _, mode := range []string{"simple_protocol", "cache_statement"} {
		conn := connect(t, dsn(addr, pgtest.SuperUser, "default_query_exec_mode="+mode))
		var s string
		if err := conn.QueryRow(ctx, "SELECT repeat('x', 10*1024*1024)").Scan(&s); err != nil {
			t.Fatal(err)
		}
		if len(s) != 10*1024*1024 {
			t.Fatalf("%s: got %d bytes", mode, len(s))
		}
		var total int64
		if err := conn.QueryRow(ctx, "SELECT sum(length(x)) FROM (SELECT repeat('y', 1000) x FROM generate_series(1, 10000)) s").Scan(&total); err != nil || total != 10_000_000 {
			t.Fatalf("%s: %d %v", mode, total, err)
		}
		// A large parameter goes the other way.
		big := strings.Repeat("z", 10*1024*1024)
		var l int
		if err := conn.QueryRow(ctx, "SELECT length($1::text)", big).Scan(&l); err != nil || l != len(big) {
			t.Fatalf("%s: length %d %v", mode, l, err)
		}
	}
}

func TestProtocol32(t *testing.T) {
	_, addr := startProxy(t, nil)
	ctx := context.Background()
	// PostgreSQL 15 speaks 3.0 and answers a 3.2 request with
	// NegotiateProtocolVersion, which must reach the client intact.
	conn := connect(t, dsn(addr, pgtest.SuperUser, "max_protocol_version=3.2"))
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatal(one, err)
	}
	// Cancel works with whatever key length the protocol uses.
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := conn.Exec(cctx, "SELECT pg_sleep(20)"); err == nil {
		t.Fatal("not cancelled")
	}
}
